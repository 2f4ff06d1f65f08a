"""The Django app: registers partman's system checks when Django starts."""

from __future__ import annotations

from django.apps import AppConfig


class PartmanConfig(AppConfig):
    """`partman.contrib.django` in INSTALLED_APPS. Labelled "partman" (the default label,
    "django", would read as Django's own); it has no models and no migrations of its own:
    partman's metadata schema is created and upgraded by partman itself on first apply."""

    name = "partman.contrib.django"
    label = "partman"
    verbose_name = "partman (PostgreSQL partitions)"

    def ready(self) -> None:
        from . import checks as _checks  # noqa: F401  (importing them registers them)
