"""The provisioner's adapters: DynamoDB, S3, CodeBuild, CloudWatch Logs."""
