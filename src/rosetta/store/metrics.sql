-- name: monitor_metrics
SELECT monitor_id, last_cycle_duration_seconds,
       extract(epoch FROM last_cycle_finished_at)::double precision AS finished
FROM monitor_heartbeats
WHERE last_cycle_finished_at IS NOT NULL
  -- Only the monitors alive by the one rule of rosetta/liveness.py (its numbers are passed):
  -- the last cycle began within max(3 intervals, interval + 120 s).
  AND last_cycle_started_at >= now() - make_interval(secs => greatest(
        %(alive_intervals)s * interval_seconds, interval_seconds + %(alive_grace)s))

-- name: source_metrics
SELECT name, extract(epoch FROM last_success_at)::double precision AS last_success,
       sync_failures_total, last_sync_status
FROM sources ORDER BY name

-- name: table_metrics
SELECT s.name, t.status, count(*)
FROM table_metadata_list t JOIN sources s ON s.id = t.source_id
GROUP BY s.name, t.status

-- name: version_metrics
SELECT s.name, h.changes_type, count(*)
FROM history_schema_evolution h
JOIN table_metadata_list t ON t.id = h.table_metadata_list_id
JOIN sources s ON s.id = t.source_id
GROUP BY s.name, h.changes_type

-- name: webhook_metrics
SELECT s.name,
       count(*) FILTER (WHERE d.status = 'delivered') AS delivered,
       count(*) FILTER (WHERE d.status = 'pending') AS pending,
       count(*) FILTER (WHERE d.status = 'failed') AS dead,
       COALESCE(sum(d.attempts), 0) - count(*) FILTER (WHERE d.status = 'delivered')
           AS failed_attempts
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
JOIN sources s ON s.id = e.source_id
GROUP BY s.name

-- name: capture_metrics
-- Per source with capture installed: whether a listener said it holds its LISTEN connection
-- within %(listener_fresh)s seconds, the last notification-to-version latency, and whether the
-- capture is broken (the source is on polling).
SELECT name,
       (capture_listener_at >= now() - make_interval(secs => %(listener_fresh)s))::int AS connected,
       capture_latency_seconds,
       (capture_error IS NOT NULL)::int AS broken
FROM sources WHERE capture_enabled ORDER BY name

-- name: sync_job_times
-- The sync jobs (sync_runs rows with a job: in-process syncs wait for nobody) that finished in
-- the last %(window)s seconds: how long each ran (started to finished) and how long each first
-- attempt waited in the queue (deferred to started: a retry's deferred_at is its first
-- attempt's), as count, sum and quantiles. A window, not the whole table: the
-- scheduler prunes sync_runs, so totals over it would go down, which Prometheus would read as
-- a counter reset.
WITH recent AS (
    SELECT CASE WHEN attempt = 0 THEN greatest(0, extract(epoch FROM started_at - deferred_at))
           END::double precision AS waited,
           extract(epoch FROM finished_at - started_at)::double precision AS ran
    FROM sync_runs
    WHERE job_id IS NOT NULL AND finished_at >= now() - make_interval(secs => %(window)s)
)
SELECT count(*) AS jobs,
       count(waited) AS waited_count,
       coalesce(sum(waited), 0) AS waited_sum,
       percentile_cont(ARRAY[0.5, 0.95]::double precision[])
           WITHIN GROUP (ORDER BY waited) AS waited_quantiles,
       coalesce(sum(ran), 0) AS ran_sum,
       percentile_cont(ARRAY[0.5, 0.95]::double precision[])
           WITHIN GROUP (ORDER BY ran) AS ran_quantiles
FROM recent

-- name: sync_job_outcomes
-- The sync job attempts that finished in the last %(window)s seconds, by status (ok, partial,
-- publication_missing, failed), and how many of them were retries (attempt > 0).
SELECT status, count(*) AS attempts, count(*) FILTER (WHERE attempt > 0) AS retries
FROM sync_runs
WHERE job_id IS NOT NULL AND finished_at >= now() - make_interval(secs => %(window)s)
GROUP BY status
ORDER BY status
