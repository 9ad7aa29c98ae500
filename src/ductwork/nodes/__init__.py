"""Node types: one module each, listed in `registry.py`."""
