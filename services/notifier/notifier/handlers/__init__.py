"""Lambda entry points of the notifier service (one module per function)."""
