from django.apps import AppConfig


class ConvoyConfig(AppConfig):
    """Convoy's tables (the go_partman guide's): created by this app's migration."""

    name = "convoy"
