"""The provisioner's domain: the lifecycle, the ledger port, the service. No boto3."""
