"""Lambda entry points of the intake service (one module per function)."""
