"""The extraction types' declarations, one light module per type (see :mod:`radfeat.extractors.registry`).

These modules import only the registry and light helpers, so the CLI's help, option validation and the
``list_types`` RPC method know every type without loading any model runtime; each type's extractor lives
in its own module of :mod:`radfeat.extractors` and is imported when a run starts.
"""
