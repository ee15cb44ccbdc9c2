-- name: insert_source
INSERT INTO sources (name, host, port, database, username, password_encrypted, connect_options,
                     publication_name, replication_name, webhook_severity, sync_interval_seconds)
VALUES (%(name)s, %(host)s, %(port)s, %(database)s, %(username)s, %(password_encrypted)s,
        %(connect_options)s, %(publication_name)s, %(replication_name)s, %(webhook_severity)s,
        %(sync_interval_seconds)s)
RETURNING *

-- name: update_source
UPDATE sources
SET name = %(name)s, host = %(host)s, port = %(port)s, database = %(database)s,
    username = %(username)s, password_encrypted = %(password_encrypted)s,
    connect_options = %(connect_options)s, publication_name = %(publication_name)s,
    replication_name = %(replication_name)s, webhook_severity = %(webhook_severity)s,
    -- A shorter interval applies from now: a source next due later than that is due then.
    next_sync_at = CASE
        WHEN %(sync_interval_seconds)s::float8 IS NOT NULL AND next_sync_at IS NOT NULL
        THEN least(next_sync_at, now() + make_interval(secs => %(sync_interval_seconds)s))
        ELSE next_sync_at
    END,
    sync_interval_seconds = %(sync_interval_seconds)s,
    updated_at = now()
WHERE id = %(id)s
RETURNING *

-- name: source_by_name
SELECT * FROM sources WHERE name = %(name)s

-- name: source_by_id
SELECT * FROM sources WHERE id = %(id)s

-- name: list_sources
SELECT s.*,
       (SELECT count(*) FROM table_metadata_list t
        WHERE t.source_id = s.id AND t.status <> 'removed') AS table_count
FROM sources s
ORDER BY s.name

-- name: allow_history_maintenance
SET LOCAL rosetta.history_maintenance = 'on'

-- name: delete_source
DELETE FROM sources WHERE id = %(id)s

-- name: set_source_flags
UPDATE sources
SET is_publication_enabled = %(is_publication_enabled)s,
    is_replication_enabled = %(is_replication_enabled)s,
    updated_at = now()
WHERE id = %(id)s
  AND (is_publication_enabled, is_replication_enabled)
      IS DISTINCT FROM (%(is_publication_enabled)s, %(is_replication_enabled)s)

-- name: record_sync
-- The outcome of one sync, on the source and as a row of sync_runs, in the sync's transaction.
WITH source AS (
    UPDATE sources
    SET last_sync_at = now(), last_sync_status = %(status)s, last_sync_error = %(error)s,
        last_success_at = CASE WHEN %(status)s IN ('ok', 'partial') THEN now()
                               ELSE last_success_at END,
        sync_failures_total = sync_failures_total
                              + CASE WHEN %(status)s IN ('failed', 'partial') THEN 1 ELSE 0 END,
        last_sync_by = %(worker)s
    WHERE id = %(id)s
    RETURNING id
)
INSERT INTO sync_runs (source_id, job_id, worker, reason, attempt, deferred_at, started_at,
                       finished_at, status, error, summary)
SELECT id, %(job_id)s, %(worker)s, %(reason)s, %(attempt)s, %(deferred_at)s, now(),
       clock_timestamp(), %(status)s, %(error)s, %(summary)s
FROM source

-- name: lock_source
-- One sync of a source at a time across every process sharing the store.
SELECT pg_advisory_xact_lock(1919251317, %(id)s::integer)

-- name: tracked_state
-- What the plan needs of each tracking row. Whether the schema is missing is decided without
-- reading (and decompressing) the schema itself unless it is tiny: only '{}' can be tiny.
SELECT id, schema_name, table_name, catalog_fingerprint AS fingerprint, status,
       CASE WHEN schema_table IS NULL THEN true
            WHEN pg_column_size(schema_table) > 64 THEN false
            ELSE schema_table = '{}'::jsonb
       END AS needs_schema,
       table_oid AS oid, row_filter
FROM table_metadata_list
WHERE source_id = %(source_id)s

-- name: tracked_state_named
-- `tracked_state` of the rows a sync woken by captured DDL needs: those of the tables its events
-- name (by OID), and those holding the names those tables have now.
SELECT id, schema_name, table_name, catalog_fingerprint AS fingerprint, status,
       CASE WHEN schema_table IS NULL THEN true
            WHEN pg_column_size(schema_table) > 64 THEN false
            ELSE schema_table = '{}'::jsonb
       END AS needs_schema,
       table_oid AS oid, row_filter
FROM table_metadata_list
WHERE id IN (
    -- Two index scans (an OR of the two would read every row of the source).
    SELECT id FROM table_metadata_list
    WHERE source_id = %(source_id)s AND table_oid = ANY (%(oids)s::bigint[])
    UNION
    SELECT t.id FROM table_metadata_list t
    JOIN unnest(%(schema_names)s::text[], %(table_names)s::text[]) AS n (schema_name, table_name)
        ON t.schema_name = n.schema_name AND t.table_name = n.table_name
    WHERE t.source_id = %(source_id)s
)

-- name: source_capture
-- A source's capture state, read under its sync lock (another sync may have moved it).
SELECT capture_enabled, capture_snapshot, capture_error FROM sources WHERE id = %(id)s

-- name: capture_listening
UPDATE sources SET capture_listener_at = now() WHERE id = ANY (%(ids)s)

-- name: capture_latency
UPDATE sources SET capture_latency_seconds = %(seconds)s WHERE id = %(id)s

-- name: record_capture
UPDATE sources
SET capture_snapshot = COALESCE(%(snapshot)s, capture_snapshot),
    capture_last_event_at = GREATEST(capture_last_event_at, %(last_event_at)s::timestamptz),
    capture_error = %(error)s
WHERE id = %(id)s

-- name: table_details
-- The stored schema and the latest version of each table in %(ids)s.
SELECT t.id, t.schema_table, h.version_schema AS last_version, h.schema_table_new AS last_schema
FROM table_metadata_list t
LEFT JOIN LATERAL (
    SELECT version_schema, schema_table_new
    FROM history_schema_evolution
    WHERE table_metadata_list_id = t.id
    ORDER BY version_schema DESC
    LIMIT 1
) h ON true
WHERE t.id = ANY (%(ids)s)

-- name: insert_table
INSERT INTO table_metadata_list (source_id, schema_name, table_name, schema_table,
                                 catalog_fingerprint, table_oid, table_kind, replica_identity,
                                 has_select_privilege, row_filter)
VALUES (%(source_id)s, %(schema_name)s, %(table_name)s, %(schema_table)s, %(fingerprint)s,
        %(oid)s, %(kind)s, %(replica_identity)s, %(can_select)s, %(row_filter)s)
RETURNING id

-- name: update_table
-- A new schema (or only new catalog facts) for a tracked table; clears error and removal.
UPDATE table_metadata_list
SET schema_name = %(schema_name)s, table_name = %(table_name)s,
    schema_table = COALESCE(%(schema_table)s, schema_table),
    catalog_fingerprint = %(fingerprint)s,
    table_oid = %(oid)s, table_kind = %(kind)s, replica_identity = %(replica_identity)s,
    has_select_privilege = %(can_select)s, row_filter = %(row_filter)s,
    status = 'tracked', last_error = NULL, removed_at = NULL,
    healed_at = CASE WHEN %(healed)s THEN now() ELSE healed_at END,
    updated_at = now()
WHERE id = %(id)s

-- name: mark_removed
UPDATE table_metadata_list
SET status = 'removed', removed_at = now(), updated_at = now()
WHERE id = ANY (%(ids)s) AND status <> 'removed'

-- name: set_table_error
UPDATE table_metadata_list
SET status = 'error', last_error = %(error)s, catalog_fingerprint = NULL, updated_at = now()
WHERE id = %(id)s

-- name: insert_history
INSERT INTO history_schema_evolution (table_metadata_list_id, version_schema, changes_type,
                                      schema_table_old, schema_table_new, changes,
                                      detected_by, lsn, changed_at, provenance)
VALUES (%(table_id)s, %(version)s, %(changes_type)s, %(old)s, %(new)s, %(changes)s,
        %(detected_by)s, %(lsn)s::pg_lsn, COALESCE(%(changed_at)s::timestamptz, now()), %(provenance)s)
RETURNING id, created_at

-- name: rename_tables
-- Tables found by OID under new names take them, all in one statement.
UPDATE table_metadata_list t
SET schema_name = r.schema_name, table_name = r.table_name, updated_at = now()
FROM unnest(%(ids)s::bigint[], %(schema_names)s::text[], %(table_names)s::text[])
     AS r (id, schema_name, table_name)
WHERE t.id = r.id

-- name: list_tables
SELECT t.id, t.schema_name, t.table_name, t.status, t.last_error, t.has_select_privilege,
       t.table_kind, t.replica_identity, t.healed_at, t.removed_at, t.created_at, t.updated_at,
       COALESCE((SELECT count(*) FROM jsonb_object_keys(t.schema_table)), 0) AS column_count,
       h.version_schema AS version, h.changes_type AS last_change_type,
       h.created_at AS last_change_at
FROM table_metadata_list t
LEFT JOIN LATERAL (
    SELECT version_schema, changes_type, created_at
    FROM history_schema_evolution
    WHERE table_metadata_list_id = t.id
    ORDER BY version_schema DESC
    LIMIT 1
) h ON true
WHERE t.source_id = %(source_id)s
ORDER BY t.schema_name, t.table_name

-- name: table_by_name
-- A live table before removed ones of the same name (a name freed and taken again).
SELECT t.*
FROM table_metadata_list t
WHERE t.source_id = %(source_id)s AND t.schema_name = %(schema_name)s
  AND t.table_name = %(table_name)s
ORDER BY t.status = 'removed', t.updated_at DESC
LIMIT 1

-- name: table_by_id
SELECT t.* FROM table_metadata_list t WHERE t.id = %(id)s

-- name: tables_named
SELECT DISTINCT ON (t.schema_name) t.* FROM table_metadata_list t
WHERE t.source_id = %(source_id)s AND t.table_name = %(table_name)s
ORDER BY t.schema_name, t.status = 'removed', t.updated_at DESC

-- name: history
SELECT id, version_schema, changes_type, schema_table_old, schema_table_new, changes, created_at,
       detected_by, lsn::text AS lsn, changed_at, provenance
FROM history_schema_evolution
WHERE table_metadata_list_id = %(table_id)s
ORDER BY version_schema, id

-- name: heartbeat_start
INSERT INTO monitor_heartbeats (monitor_id, hostname, pid, interval_seconds,
                                last_cycle_started_at)
VALUES (%(monitor_id)s, %(hostname)s, %(pid)s, %(interval)s, now())
ON CONFLICT (monitor_id) DO UPDATE
SET last_cycle_started_at = now(), interval_seconds = EXCLUDED.interval_seconds

-- name: heartbeat_finish
UPDATE monitor_heartbeats
SET last_cycle_finished_at = now(), last_cycle_duration_seconds = %(duration)s,
    last_cycle_outcome = %(outcome)s, last_cycle_summary = %(summary)s
WHERE monitor_id = %(monitor_id)s

-- name: sources_due
-- The sources whose sync is due now (a monitor's first cycle waits for them).
SELECT id FROM sources WHERE next_sync_at IS NULL OR next_sync_at <= now()

-- name: synced_since
SELECT DISTINCT source_id FROM sync_runs
WHERE source_id = ANY(%(ids)s) AND started_at >= %(since)s

-- name: runs_since
-- The syncs recorded since a cycle started, by any worker or process.
SELECT summary FROM sync_runs WHERE finished_at >= %(since)s ORDER BY id

-- name: latest_heartbeat
SELECT * FROM monitor_heartbeats ORDER BY last_cycle_started_at DESC NULLS LAST LIMIT 1

-- name: tables_page
-- One page of a source's tables, filtered by name and status, with each table's version. The
-- page is chosen on narrow rows (no schema JSON to sort), then the page's rows are read.
WITH page AS (
    SELECT t.id, t.schema_name, t.table_name
    FROM table_metadata_list t
    WHERE t.source_id = %(source_id)s
      AND (%(q)s::text IS NULL
           OR strpos(lower(t.schema_name || '.' || t.table_name), lower(%(q)s)) > 0)
      AND (%(status)s::text IS NULL
           OR (%(status)s = 'healed' AND t.healed_at IS NOT NULL AND t.status = 'tracked')
           OR (%(status)s = 'no_select' AND t.has_select_privilege IS FALSE)
           OR t.status = %(status)s)
    ORDER BY t.schema_name, t.table_name
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT t.id, t.schema_name, t.table_name, t.status, t.last_error, t.has_select_privilege,
       t.table_kind, t.replica_identity, t.healed_at, t.removed_at, t.created_at, t.updated_at,
       COALESCE((SELECT count(*) FROM jsonb_object_keys(t.schema_table)), 0) AS column_count,
       h.version_schema AS version, h.changes_type AS last_change_type,
       h.created_at AS last_change_at
FROM page p
JOIN table_metadata_list t ON t.id = p.id
LEFT JOIN LATERAL (
    SELECT version_schema, changes_type, created_at
    FROM history_schema_evolution
    WHERE table_metadata_list_id = t.id
    ORDER BY version_schema DESC
    LIMIT 1
) h ON true
ORDER BY p.schema_name, p.table_name

-- name: tables_count
SELECT count(*)
FROM table_metadata_list t
WHERE t.source_id = %(source_id)s
  AND (%(q)s::text IS NULL
       OR strpos(lower(t.schema_name || '.' || t.table_name), lower(%(q)s)) > 0)
  AND (%(status)s::text IS NULL
       OR (%(status)s = 'healed' AND t.healed_at IS NOT NULL AND t.status = 'tracked')
       OR (%(status)s = 'no_select' AND t.has_select_privilege IS FALSE)
       OR t.status = %(status)s)

-- name: status_counts
SELECT status, count(*) AS n FROM table_metadata_list
WHERE source_id = %(source_id)s GROUP BY status

-- name: version_row
SELECT id, version_schema, changes_type, schema_table_old, schema_table_new, changes, created_at,
       detected_by, lsn::text AS lsn, changed_at, provenance
FROM history_schema_evolution
WHERE table_metadata_list_id = %(table_id)s AND version_schema = %(version)s
ORDER BY id
LIMIT 1

-- name: versions_list
SELECT version_schema, changes_type, created_at, jsonb_array_length(changes) AS change_count,
       COALESCE((SELECT count(*) FROM jsonb_object_keys(schema_table_new)), 0) AS column_count,
       detected_by, lsn::text AS lsn, changed_at, provenance,
       (SELECT c FROM jsonb_array_elements(changes) c
        WHERE c->>'type' = 'RENAME TABLE' LIMIT 1) AS table_rename
FROM history_schema_evolution
WHERE table_metadata_list_id = %(table_id)s
ORDER BY version_schema, id

-- name: insert_token
INSERT INTO api_tokens (name, token_hash, role) VALUES (%(name)s, %(token_hash)s, %(role)s)
RETURNING id, name, created_at

-- name: list_tokens
SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name

-- name: revoke_token
UPDATE api_tokens SET revoked_at = now()
WHERE name = %(name)s AND revoked_at IS NULL
RETURNING id

-- name: token_by_name
SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens WHERE name = %(name)s

-- name: verify_token
SELECT id, name, role, created_at, last_used_at, revoked_at,
       last_used_at IS NULL OR last_used_at < now() - interval '1 minute' AS stale
FROM api_tokens
WHERE token_hash = %(token_hash)s AND revoked_at IS NULL

-- name: touch_token
UPDATE api_tokens SET last_used_at = now()
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')

-- name: source_table_count
SELECT count(*) FROM table_metadata_list WHERE source_id = %(id)s AND status <> 'removed'

-- name: token_by_id
SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens WHERE id = %(id)s

-- name: delete_token_sessions
-- A revoked token's web sessions end with it (in the revoke's transaction).
DELETE FROM web_sessions WHERE token_id = %(token_id)s

-- name: insert_web_session
INSERT INTO web_sessions (id, token_id, expires_at)
VALUES (%(session_hash)s, %(token_id)s, now() + make_interval(secs => %(max_age)s))

-- name: web_session_token
-- The token of a live web session: the session exists and has not expired, and its token is not
-- revoked. last_seen_at moves at most once a minute, in the same statement, so that a page view
-- is one round trip and rarely a write.
WITH live AS (
    SELECT s.id AS session_hash, s.last_seen_at,
           t.id, t.name, t.role, t.created_at, t.last_used_at, t.revoked_at
    FROM web_sessions s
    JOIN api_tokens t ON t.id = s.token_id
    WHERE s.id = %(session_hash)s AND s.expires_at > now() AND t.revoked_at IS NULL
), seen AS (
    UPDATE web_sessions SET last_seen_at = now()
    WHERE id IN (SELECT session_hash FROM live WHERE last_seen_at < now() - interval '1 minute')
)
SELECT id, name, role, created_at, last_used_at, revoked_at FROM live

-- name: delete_web_session
DELETE FROM web_sessions WHERE id = %(session_hash)s

-- name: prune_web_sessions
DELETE FROM web_sessions WHERE expires_at <= now()

-- name: table_schema_facts
-- Per table: its row filter, and how many columns its latest version records (NULL when it has
-- no version). A table whose schema_table is empty is "no columns" when that latest version is
-- {} (every column was dropped), and "missing" (the next sync heals it) otherwise.
SELECT t.id, t.row_filter,
       CASE WHEN jsonb_typeof(h.schema_table_new) IS DISTINCT FROM 'object' THEN NULL
            ELSE (SELECT count(*) FROM jsonb_object_keys(h.schema_table_new))
       END AS latest_version_columns
FROM table_metadata_list t
LEFT JOIN LATERAL (
    SELECT schema_table_new
    FROM history_schema_evolution
    WHERE table_metadata_list_id = t.id
    ORDER BY version_schema DESC, id DESC
    LIMIT 1
) h ON true
WHERE t.id = ANY (%(ids)s)

-- as-of and provenance

-- name: version_points
-- Where each version of a table starts, oldest first: the schema as of a time or an LSN is
-- chosen from these (rosetta.registry.pick_as_of). Small rows, no schema JSON.
SELECT version_schema, created_at, detected_by, lsn::text AS lsn, changed_at,
       (provenance->>'commit_time_exact')::boolean AS commit_time_exact
FROM history_schema_evolution
WHERE table_metadata_list_id = %(table_id)s
ORDER BY version_schema, id

-- capture

-- name: capture_installed
-- Capture installed on the source: the source is in real-time mode from its snapshot taken
-- right after the install committed (the events of transactions it excludes are still to read).
UPDATE sources
-- Installed again over a working install, it keeps reading from where it was (events recorded
-- meanwhile are kept on the source, and still to read).
SET capture_enabled = true, capture_installed_at = now(), capture_error = NULL,
    capture_snapshot = CASE WHEN capture_enabled THEN COALESCE(capture_snapshot, %(snapshot)s)
                            ELSE %(snapshot)s END
WHERE id = %(id)s

-- name: capture_uninstalled
UPDATE sources
SET capture_enabled = false, capture_snapshot = NULL, capture_error = NULL
WHERE id = %(id)s
