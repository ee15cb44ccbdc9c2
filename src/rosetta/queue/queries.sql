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

-- name: workers
-- Every worker procrastinate knows, with Rosetta's name for it and the jobs it runs now.
SELECT w.id AS worker_id, w.last_heartbeat, q.name, q.hostname, q.pid, q.concurrency,
       q.started_at,
       w.last_heartbeat >= now() - make_interval(secs => %(stalled_after)s) AS alive,
       (SELECT count(*) FROM procrastinate_jobs j
        WHERE j.worker_id = w.id AND j.status = 'doing') AS running
FROM procrastinate_workers w
LEFT JOIN queue_workers q ON q.worker_id = w.id
ORDER BY w.id

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
