# Identifiers and tags (set by the provisioner for every build).
variable "request_id" {
  description = "selfservice request id; tagged on the account."
  type        = string
}

variable "ticket" {
  description = "Ticket reference; tagged on the account."
  type        = string
}

variable "ticket_key" {
  description = "Ticket key."
  type        = string
}

variable "requested_by" {
  description = "ITSM user id of the requester."
  type        = string
  default     = ""
}

variable "deploy_role_arn" {
  description = "Role Terraform assumes in the management account (null: the build's own credentials)."
  type        = string
  default     = null
}

# Product variables (schemas/selfservice_contracts/products/aws-account.json).
variable "account_name" {
  description = "Account name."
  type        = string
}

variable "account_email" {
  description = "Root e-mail address of the account."
  type        = string
}

variable "organizational_unit" {
  description = "Path of the parent OU below the root, e.g. Workloads/NonProd (at most 3 levels)."
  type        = string

  validation {
    condition     = length(split("/", var.organizational_unit)) <= 3
    error_message = "organizational_unit may be at most 3 levels deep."
  }
}

variable "environment" {
  description = "Environment the account serves."
  type        = string
}

variable "cost_center" {
  description = "Cost center tag."
  type        = string
}

variable "approvers" {
  description = "Approvers of changes to the account (tagged)."
  type        = list(string)
  default     = []
}
