"""Integrations of partman with frameworks; each submodule needs its framework installed."""
