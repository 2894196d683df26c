"""provisioner: the request ledger and Terraform through CodeBuild."""
