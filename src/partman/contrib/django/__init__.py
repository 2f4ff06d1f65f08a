"""partman inside a Django project: an installable app, configured in settings.py.

    INSTALLED_APPS = [..., "partman.contrib.django"]

    PARTMAN = {
        "DATABASE": "default",               # an alias of DATABASES (its DSN is partman's)
        "partman": {"lock_timeout": "250ms"},  # partman.toml's [partman] keys
        "table": [                           # partman.toml's [[table]] entries, key for key
            {
                "name": "events",
                "schema": "convoy",
                "tenant_id_column": "project_id",
                "partition_by": "created_at",
                "partition_interval": "1 day",
                "retention_period": "30 days",
                "partition_count": 10,
                "tenants_query": "SELECT uid FROM convoy.projects",
                "tenant": [{"id": "project-globex", "retention_period": "7 days"}],
            },
        ],
    }

Then `manage.py partman plan | apply | status [--json]`, and `manage.py check --database
default` warns (partman.W001) when a tenant's partitions run short. The block is read by the
same code as partman.toml (`partman.settings.from_mapping`) and applied by the same sync as
`partman apply`, so the two never mean different things. See docs/integrations/django.md.
"""
