"""IAM inside the embedded AWS: a policy evaluator and its enforcement on moto.

``evaluator`` and ``conditions`` are pure (no moto); ``resources`` maps each request
to the action, resource ARNs and condition keys AWS authorizes; ``enforcement``
patches moto; ``routes``/``client`` are the local runtime's internal API. What is and
is not evaluated: ``docs/iam-enforcement.md``.
"""
