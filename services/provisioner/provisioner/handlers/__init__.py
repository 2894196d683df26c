"""Lambda entry points of the provisioner service (one module per function)."""
