output "application_name" {
  description = "Name the real module would give the application."
  value       = terraform_data.application.output.name
}

output "instance_ids" {
  description = "None: the stand-in creates no instances."
  value       = []
}
