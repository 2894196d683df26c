# Benchmark stand-in for the ec2-app product's Terraform (bench/burst.py); never deployed.
# Same backend and interface as services/provisioner/products/ec2-app/terraform (the
# benchmark copies that module's variables.tf beside these files), no provider: the
# burst measures the platform around Terraform, not the AWS provider's API calls.
terraform {
  required_version = ">= 1.10.0"

  # Bucket, key (one per product and ticket), region and locking come from
  # `terraform init -backend-config=…` in the buildspec, as for the real module.
  backend "s3" {}
}
