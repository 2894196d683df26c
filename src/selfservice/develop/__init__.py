"""Tools for whoever changes the platform: run it locally, check it before deploying.

``demo``, ``up`` and ``invoke`` run the platform on the embedded stack
(:mod:`selfservice.local`); ``wiring`` and ``deploy_check`` find what a deployment
would meet; ``contracts_export``, ``record_plans``, ``prices`` and ``iam_report`` write
the committed files derived from the code (schemas, plan fixtures, price tables, the
least-privilege report).
"""
