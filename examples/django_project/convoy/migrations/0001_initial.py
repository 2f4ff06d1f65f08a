"""Convoy's schema: the projects (partman's tenants) and the go_partman guide's three
multi-tenant tables, partitioned BY RANGE (project_id, created_at). Partitions are partman's
job, so none are created here."""

from django.db import migrations


class Migration(migrations.Migration):
    initial = True

    operations = [  # noqa: RUF012 (a Django migration, as makemigrations writes it)
        migrations.RunSQL(
            sql=[
                "CREATE SCHEMA convoy",
                """
                CREATE TABLE convoy.projects (
                    uid VARCHAR PRIMARY KEY,
                    name TEXT NOT NULL,
                    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
                )
                """,
                """
                CREATE TABLE convoy.events (
                    id VARCHAR NOT NULL,
                    project_id VARCHAR NOT NULL,
                    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
                    data JSONB,
                    PRIMARY KEY (id, created_at, project_id)
                ) PARTITION BY RANGE (project_id, created_at)
                """,
                """
                CREATE TABLE convoy.event_deliveries (LIKE convoy.events INCLUDING ALL)
                    PARTITION BY RANGE (project_id, created_at)
                """,
                """
                CREATE TABLE convoy.delivery_attempts (LIKE convoy.events INCLUDING ALL)
                    PARTITION BY RANGE (project_id, created_at)
                """,
            ],
            reverse_sql=["DROP SCHEMA convoy CASCADE"],
        ),
    ]
