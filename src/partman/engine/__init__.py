"""The engine: one pass from reading the world to the report, and the managers around it.

Written once as asyncio (`*_async.py`); each sync module of the same name is generated from its
source by tools/async_to_sync.py and never edited by hand. Imports `model`, `decide`, `db` and
`settings`; nothing below imports it.
"""
