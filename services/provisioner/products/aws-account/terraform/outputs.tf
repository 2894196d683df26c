output "account_id" {
  description = "Id of the new account."
  value       = aws_organizations_account.this.id
}

output "account_arn" {
  description = "ARN of the new account."
  value       = aws_organizations_account.this.arn
}

output "parent_id" {
  description = "OU the account was placed in."
  value       = aws_organizations_account.this.parent_id
}
