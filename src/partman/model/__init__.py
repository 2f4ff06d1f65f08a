"""What the user declares and what a pass decides and reports, as plain values.

Pure: nothing here talks to a database or a clock's outside world. Every other layer imports
from here; this folder imports only `partman.errors` and itself.
"""
