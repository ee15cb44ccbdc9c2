-- The queue's reads and writes of Rosetta's own tables, and its reads of procrastinate's.

-- name: claim_due
-- The sources whose sync is due and that have no sync job waiting or running, each claimed for
-- its next interval in the transaction that defers its job, so that two schedulers never defer
-- it twice. A source being synced right now (its row locked) waits for a later tick.
WITH due AS (
    SELECT s.id,
           make_interval(secs => coalesce(s.sync_interval_seconds, %(default_interval)s)) AS every
    FROM sources s
    WHERE (s.next_sync_at IS NULL OR s.next_sync_at <= now())
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_jobs j
          WHERE j.queueing_lock = %(prefix)s || s.id AND j.status = 'todo'
      )
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_jobs j
          WHERE j.lock = %(prefix)s || s.id AND j.status = 'doing'
      )
    ORDER BY s.next_sync_at NULLS FIRST, s.id
    LIMIT %(limit)s
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE sources s
-- One interval after the time it was due (no drift), or after now when it is more than an
-- interval late (never due again at once).
SET next_sync_at = CASE
        WHEN s.next_sync_at IS NULL OR s.next_sync_at + due.every <= now() THEN now() + due.every
        ELSE s.next_sync_at + due.every
    END
FROM due
WHERE s.id = due.id
RETURNING s.id

-- name: waiting_job
-- The sync job of a source that waits in the queue (one at most: its queueing lock).
SELECT id FROM procrastinate_jobs WHERE queueing_lock = %(lock)s AND status = 'todo'

-- name: job_status
SELECT status::text FROM procrastinate_jobs WHERE id = %(id)s

-- name: job_run
-- The last sync a job ran (a retried job ran more than one).
SELECT summary FROM sync_runs WHERE job_id = %(id)s ORDER BY id DESC LIMIT 1

-- name: queue_workers
-- Every worker procrastinate knows (a worker that stopped cleanly removed itself; one killed
-- stays until another starts), with Rosetta's name for it (given at its first sync job: NULL
-- until then), whether its last heartbeat is within %(stalled_after)s seconds, and the jobs it
-- runs now.
SELECT w.id AS worker_id, q.name, q.hostname, q.pid, q.concurrency, w.last_heartbeat,
       extract(epoch FROM w.last_heartbeat)::double precision AS last_heartbeat_seconds,
       extract(epoch FROM now() - w.last_heartbeat)::double precision AS heartbeat_age,
       w.last_heartbeat >= now() - make_interval(secs => %(stalled_after)s) AS alive,
       (SELECT count(*) FROM procrastinate_jobs j
        WHERE j.worker_id = w.id AND j.status = 'doing') AS running
FROM procrastinate_workers w
LEFT JOIN queue_workers q ON q.worker_id = w.id
ORDER BY w.id

-- name: queue_jobs
-- The queue's depth: its jobs by queue and status, every status of the sync queue (and of any
-- other queue with a job) shown, at 0 when it has none. Successful jobs are deleted by the
-- workers, so "succeeded" stays near 0; "failed" are the jobs whose last retry failed (kept for
-- ROSETTA_SYNC_RUNS_RETENTION_HOURS).
SELECT q.queue_name, s.status::text AS status, count(j.id) AS jobs
FROM (SELECT %(sync_queue)s::text AS queue_name
      UNION SELECT DISTINCT queue_name FROM procrastinate_jobs) q
CROSS JOIN unnest(enum_range(NULL::procrastinate_job_status)) s (status)
LEFT JOIN procrastinate_jobs j ON j.queue_name = q.queue_name AND j.status = s.status
GROUP BY q.queue_name, s.status
ORDER BY q.queue_name, s.status

-- name: queue_waiting
-- The sync jobs due to run that no worker has taken (a retry waiting for its backoff is not
-- due yet), and how long the oldest has waited: since it was deferred (its deferred_at
-- argument, written by rosetta.queue.client.sync_job), or for a retry since it came due.
SELECT count(*) AS jobs,
       coalesce(extract(epoch FROM now() - min(greatest(
           (args ->> 'deferred_at')::timestamptz, scheduled_at))), 0)::double precision
           AS oldest_seconds
FROM procrastinate_jobs
WHERE queue_name = %(sync_queue)s AND status = 'todo'
  AND (scheduled_at IS NULL OR scheduled_at <= now())

-- name: workers_alive
SELECT count(*) FROM procrastinate_workers
WHERE last_heartbeat >= now() - make_interval(secs => %(stalled_after)s)

-- name: name_worker
INSERT INTO queue_workers (worker_id, name, hostname, pid, concurrency)
SELECT %(worker_id)s, %(name)s, %(hostname)s, %(pid)s, %(concurrency)s
WHERE EXISTS (SELECT 1 FROM procrastinate_workers WHERE id = %(worker_id)s)
ON CONFLICT (worker_id) DO NOTHING

-- name: prune_runs
-- Forget the oldest sync records, a batch at a time.
DELETE FROM sync_runs
WHERE id IN (
    SELECT id FROM sync_runs
    WHERE finished_at < now() - make_interval(secs => %(seconds)s)
    ORDER BY id
    LIMIT 10000
)
