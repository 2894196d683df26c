"""Tools for whoever runs a deployed platform: against AWS or the local runtime alike.

``selfservice ops`` (the ops API, SigV4-signed), ``status`` (a ticket's timeline),
``replay`` (archived events again, for an audit or a reprocess) and ``dlq`` (what is
parked and why, a safe redrive); ``resources`` is how they find the stack's bus,
archive, audit trail and ledger.
"""
