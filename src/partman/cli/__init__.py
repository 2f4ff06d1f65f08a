"""The `partman` command line (Typer): one module per command group (setup, plan, inventory,
tenants, service), assembled in `root`, and `render`, the renderers other front ends
(Django's `manage.py partman`) share.
"""

from .root import app, main

__all__ = ["app", "main"]
