"""Data package: the static page served by the local backend."""
