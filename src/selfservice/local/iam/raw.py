"""The WSGI environ key holding a request's body exactly as received.

The signature covers those bytes; moto's parsed form data would have to be re-encoded,
and not byte for byte.
"""

RAW_BODY = "selfservice.raw_body"
