-- The application's own schema (the go_partman guide's convoy tables); partman adds nothing here.
CREATE SCHEMA IF NOT EXISTS convoy;
CREATE TABLE IF NOT EXISTS convoy.projects (
    uid varchar PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO convoy.projects (uid, name) VALUES
    ('project-acme', 'Acme'), ('project-globex', 'Globex'), ('o''reilly-媒体', 'O''Reilly 媒体')
ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS convoy.events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    project_id varchar NOT NULL,
    event_type text NOT NULL,
    data jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, project_id, created_at)
) PARTITION BY RANGE (project_id, created_at);
CREATE TABLE IF NOT EXISTS convoy.event_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY,
    project_id varchar NOT NULL,
    event_id bigint NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, project_id, created_at)
) PARTITION BY RANGE (project_id, created_at);
CREATE TABLE IF NOT EXISTS convoy.delivery_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY,
    project_id varchar NOT NULL,
    delivery_id bigint NOT NULL,
    http_status int,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, project_id, created_at)
) PARTITION BY RANGE (project_id, created_at);
