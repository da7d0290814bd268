"""Command-line tools: `python -m raymod.tools.im2rec` (MXNet's tools/im2rec.py)."""
