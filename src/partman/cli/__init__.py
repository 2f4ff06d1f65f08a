"""The `partman` command line (Typer): one module per command group, and `render`, the
renderers other front ends (Django's `manage.py partman`) share.
"""

from .commands import app, main

__all__ = ["app", "main"]
