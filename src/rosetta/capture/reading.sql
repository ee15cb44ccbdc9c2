-- name: capture_state
-- Whether the capture is whole on this source: its events table readable, and both event
-- triggers present and enabled. Read in the sync's snapshot, before the events.
SELECT
    pg_catalog.to_regclass('rosetta_capture.ddl_events') IS NOT NULL
        AND pg_catalog.has_table_privilege('rosetta_capture.ddl_events', 'SELECT')
        AS events_readable,
    (SELECT count(*) FROM pg_catalog.pg_event_trigger
     WHERE evtname IN ('rosetta_capture_ddl', 'rosetta_capture_drop') AND evtenabled <> 'D')
        AS triggers_enabled,
    pg_catalog.pg_current_snapshot()::text AS snapshot,
    pg_catalog.current_setting('track_commit_timestamp')::bool AS commit_times

-- name: new_events
-- The events of transactions that have committed since the snapshot %(seen)s was taken (all of
-- them when there is none): a transaction is either visible in a snapshot or not, so each
-- event is read by exactly one sync, whatever order the transactions committed in. At most
-- %(limit)s, in id order; with track_commit_timestamp, each with its commit time.
SELECT e.id, e.xid::text AS xid, e.event_time, e.lsn::text AS lsn, e.command_tag,
       e.object_type, e.object_identity, e.table_oid::bigint AS table_oid, e.schema_name,
       e.table_name, e.publication_name, e.statement, e.session_user_name,
       e.current_user_name, e.application_name, host(e.client_addr) AS client_addr,
       e.backend_pid,
       CASE WHEN %(commit_times)s THEN pg_catalog.pg_xact_commit_timestamp(pg_catalog.xid(e.xid))
       END AS commit_time
FROM rosetta_capture.ddl_events e
WHERE %(seen)s::text IS NULL
   OR (e.xid >= pg_catalog.pg_snapshot_xmin(%(seen)s::pg_snapshot)
       AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, %(seen)s::pg_snapshot))
ORDER BY e.id
LIMIT %(limit)s

-- name: prune_events
-- Events older than the retention, oldest first, a bounded batch at a time.
DELETE FROM rosetta_capture.ddl_events
WHERE id IN (
    SELECT id FROM rosetta_capture.ddl_events
    WHERE event_time < now() - make_interval(days => %(days)s)
    ORDER BY id
    LIMIT 10000
)
