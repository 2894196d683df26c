"""Lambda entry points of the ops API (one module per function)."""
