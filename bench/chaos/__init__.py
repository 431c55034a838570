"""The chaos suite: each backend fault against `azora up --workers 2` (see run.py)."""
