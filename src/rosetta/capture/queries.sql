-- Queries on a source about Rosetta's capture (rosetta.capture.installer). install.sql installs
-- it; these read its state and take it out.

-- name: status
-- Whether the schema, the events table and both event triggers are there (and enabled), and
-- whether the connected role may create event triggers: a superuser, or a member of a managed
-- service's admin role known to be allowed to (Amazon RDS / Aurora: rds_superuser; Azure
-- Database for PostgreSQL flexible server: azure_pg_admin; Google Cloud SQL / AlloyDB:
-- cloudsqlsuperuser / alloydbsuperuser, with event triggers enabled by the service's flag).
-- The install itself is the final judge: may_install only decides what the status offers.
SELECT
    EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s) AS schema_exists,
    pg_catalog.to_regclass(pg_catalog.quote_ident(%(schema)s) || '.ddl_events') IS NOT NULL
        AS table_exists,
    coalesce(pg_catalog.has_table_privilege(
        pg_catalog.to_regclass(pg_catalog.quote_ident(%(schema)s) || '.ddl_events'), 'SELECT'),
        false) AS can_read,
    (SELECT count(*) FROM pg_catalog.pg_event_trigger WHERE evtname = ANY (%(triggers)s))
        AS triggers,
    (SELECT count(*) FROM pg_catalog.pg_event_trigger
     WHERE evtname = ANY (%(triggers)s) AND evtenabled <> 'D') AS triggers_enabled,
    (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user)
    OR EXISTS (
        SELECT 1 FROM pg_catalog.pg_roles AS a
        WHERE a.rolname IN ('rds_superuser', 'azure_pg_admin', 'cloudsqlsuperuser',
                            'alloydbsuperuser')
          AND pg_catalog.pg_has_role(current_user, a.oid, 'MEMBER')
    ) AS may_install,
    current_user AS role_name,
    EXISTS (
        SELECT 1 FROM pg_catalog.pg_stat_activity
        WHERE datname = pg_catalog.current_database() AND application_name = %(listener)s
    ) AS listener_connected

-- name: events
-- Only when the events table exists and the role may read it (else it does not parse).
SELECT count(*) AS event_count,
       max(event_time) AS last_event_at,
       pg_catalog.pg_total_relation_size('rosetta_capture.ddl_events') AS table_bytes
FROM rosetta_capture.ddl_events

-- name: uninstall
-- Idempotent: what is not there is skipped. The events go with the schema.
DROP EVENT TRIGGER IF EXISTS rosetta_capture_ddl;
DROP EVENT TRIGGER IF EXISTS rosetta_capture_drop;
DROP SCHEMA IF EXISTS rosetta_capture CASCADE;

-- name: snapshot
-- The source's snapshot right after the install committed: the transactions whose events the
-- reader has still to see are those it does not include.
SELECT pg_catalog.pg_current_snapshot()::text
