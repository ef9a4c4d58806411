"""Extraction types: the contract, the registry and one module per type."""
