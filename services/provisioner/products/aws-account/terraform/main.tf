locals {
  ou_path = split("/", var.organizational_unit)
  tags = {
    "selfservice:ticket"     = var.ticket
    "selfservice:request-id" = var.request_id
    "CostCenter"             = var.cost_center
    "Environment"            = var.environment
    "Approvers"              = join(" ", var.approvers)
    "ManagedBy"              = "selfservice"
  }
}

data "aws_organizations_organization" "this" {}

# Resolve the OU path one level at a time, below the root.
data "aws_organizations_organizational_units" "level1" {
  parent_id = data.aws_organizations_organization.this.roots[0].id
}

locals {
  level1_id = one([
    for ou in data.aws_organizations_organizational_units.level1.children : ou.id
    if ou.name == local.ou_path[0]
  ])
}

data "aws_organizations_organizational_units" "level2" {
  count     = length(local.ou_path) > 1 ? 1 : 0
  parent_id = local.level1_id
}

locals {
  level2_id = length(local.ou_path) > 1 ? one([
    for ou in data.aws_organizations_organizational_units.level2[0].children : ou.id
    if ou.name == local.ou_path[1]
  ]) : null
}

data "aws_organizations_organizational_units" "level3" {
  count     = length(local.ou_path) > 2 ? 1 : 0
  parent_id = local.level2_id
}

locals {
  level3_id = length(local.ou_path) > 2 ? one([
    for ou in data.aws_organizations_organizational_units.level3[0].children : ou.id
    if ou.name == local.ou_path[2]
  ]) : null
  parent_id = coalesce(local.level3_id, local.level2_id, local.level1_id)
}

resource "aws_organizations_account" "this" {
  name                       = var.account_name
  email                      = var.account_email
  parent_id                  = local.parent_id
  iam_user_access_to_billing = "DENY"
  # Decommissioning closes the account (AWS keeps it suspended for 90 days).
  close_on_deletion = true
  tags              = local.tags

  lifecycle {
    precondition {
      condition     = local.level1_id != null
      error_message = "organizational unit ${var.organizational_unit} does not exist below the root."
    }
    # AWS ignores a changed role name after creation; do not plan a replacement for it.
    ignore_changes = [role_name]
  }
}
