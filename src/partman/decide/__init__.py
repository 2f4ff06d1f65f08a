"""The decisions: desired against actual (config, catalog snapshot, now) -> Plan, what can be
adopted, how far ahead each tenant is covered (the one runway verdict), what a config sync
changes. Pure: imports `model` (and `settings` for the file's shapes), never a connection.
"""
