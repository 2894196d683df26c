terraform {
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Bucket, key (one per product and ticket), region and locking come from
  # `terraform init -backend-config=…` in the buildspec.
  backend "s3" {}
}

# AWS Organizations is a global service served from us-east-1.
provider "aws" {
  region = "us-east-1"

  dynamic "assume_role" {
    for_each = var.deploy_role_arn == null ? [] : [var.deploy_role_arn]
    content {
      role_arn     = assume_role.value
      session_name = "selfservice-${var.request_id}"
    }
  }

  retry_mode  = "adaptive"
  max_retries = 10
}
