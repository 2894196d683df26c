# One resource, recorded in the ticket's own state (S3 backend, lock file), like any apply.
resource "terraform_data" "application" {
  input = {
    name        = "ec2-app-${lower(var.ticket_key)}"
    ticket      = var.ticket
    request_id  = var.request_id
    environment = var.environment
  }
}
