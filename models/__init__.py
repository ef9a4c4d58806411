"""Data package: the weights catalog (catalog.json)."""
