"""Settings of the example project: Convoy's tables (the go_partman guide's), kept
partitioned by partman.

The database comes from the DATABASE_URL environment variable (a libpq URI or key=value
string), split into Django's DATABASES fields. partman needs nothing more than its app and
the PARTMAN block below: it connects to DATABASES["default"] with the same parameters.
"""

import os

from psycopg.conninfo import conninfo_to_dict

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS: list[str] = []
ROOT_URLCONF = "convoy_site.urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "partman.contrib.django",
    "convoy",
]

_database = conninfo_to_dict(os.environ.get("DATABASE_URL", "postgresql:///convoy"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _database.pop("dbname", "convoy"),
        "USER": _database.pop("user", ""),
        "PASSWORD": _database.pop("password", ""),
        "HOST": _database.pop("host", ""),
        "PORT": _database.pop("port", ""),
        "OPTIONS": _database,  # anything else the URL says (sslmode, ...)
    }
}

# partman.toml's keys, as a dict: [partman] is "partman", each [[table]] an item of "table",
# each [[table.tenant]] an item of its "tenant". `manage.py partman apply` (from cron, or a
# Kubernetes CronJob) keeps every project's partitions ten days ahead.
_CONVOY_TABLE = {
    "schema": "convoy",
    "tenant_id_column": "project_id",
    "partition_by": "created_at",
    "partition_interval": "1 day",
    "retention_period": "30 days",
    "partition_count": 10,
    "tenants_query": "SELECT uid FROM convoy.projects",  # new projects join on the next apply
}
PARTMAN = {
    "DATABASE": "default",
    "partman": {
        "lock_timeout": "250ms",
        "timezone": "UTC",
    },
    "table": [
        {
            "name": "events",
            **_CONVOY_TABLE,
            "tenant": [{"id": "project-globex", "retention_period": "7 days"}],
        },
        {"name": "event_deliveries", **_CONVOY_TABLE},
        {"name": "delivery_attempts", **_CONVOY_TABLE},
    ],
}
