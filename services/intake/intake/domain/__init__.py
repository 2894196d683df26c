"""Intake's domain logic: pure and typed, no boto3 (adapters are passed in)."""
