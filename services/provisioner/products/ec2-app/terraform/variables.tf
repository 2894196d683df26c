# Identifiers and tags (set by the provisioner for every build).
variable "request_id" {
  description = "selfservice request id; tagged on every resource."
  type        = string
}

variable "ticket" {
  description = "Ticket reference (servicenow:RITM0010042); tagged on every resource."
  type        = string
}

variable "ticket_key" {
  description = "Ticket key, used in resource names."
  type        = string
}

variable "requested_by" {
  description = "ITSM user id of the requester."
  type        = string
  default     = ""
}

variable "deploy_role_arn" {
  description = "Role Terraform assumes for this product (null: the build's own credentials)."
  type        = string
  default     = null
}

variable "ssm_run_allowed" {
  description = "Tag instances so the ops API may run commands on them (set from policy)."
  type        = bool
  default     = false
}

# Product variables (schemas/selfservice_contracts/products/ec2-app.json).
variable "instance_type" {
  description = "EC2 instance type."
  type        = string
}

variable "environment" {
  description = "Deployment environment."
  type        = string
}

variable "desired_capacity" {
  description = "Instances the Auto Scaling group keeps running."
  type        = number

  validation {
    condition     = var.desired_capacity >= 0 && var.desired_capacity <= 100
    error_message = "desired_capacity must be between 0 and 100."
  }
}

variable "cost_center" {
  description = "Cost center tag."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "expose_alb" {
  description = "Create a public Application Load Balancer in front of the instances."
  type        = bool
  default     = false
}

variable "app_port" {
  description = "Port the application listens on."
  type        = number
  default     = 80
}

variable "justification" {
  description = "Kept for the record; not used by any resource."
  type        = string
  default     = ""
}

# Module settings (defaults suit a small application).
variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.20.0.0/16"
}

variable "enable_nat" {
  description = "Give the private subnets a NAT gateway (needed for outbound internet)."
  type        = bool
  default     = false
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter holding the AMI id."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener (HTTP then redirects to HTTPS); null: HTTP only."
  type        = string
  default     = null
}

variable "root_volume_gb" {
  description = "Size of the encrypted root volume."
  type        = number
  default     = 20
}
