-- depends: 0012.job-queue
-- Syncs on the job queue: each source's own interval and when it is next due, which process
-- synced it last, and one row per sync (the record the scheduler's promise is checked against:
-- every source synced once per interval).
ALTER TABLE sources
    -- NULL: ROSETTA_MONITOR_INTERVAL.
    ADD COLUMN sync_interval_seconds DOUBLE PRECISION
        CONSTRAINT sources_sync_interval_seconds_check
        CHECK (sync_interval_seconds >= 1 AND sync_interval_seconds <= 604800),
    -- When the scheduler next defers a sync of the source (NULL: at its next tick).
    ADD COLUMN next_sync_at TIMESTAMPTZ,
    -- The worker (or process) whose sync was the last one.
    ADD COLUMN last_sync_by TEXT;

CREATE TABLE sync_runs (
    id BIGSERIAL PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    -- The procrastinate job it ran as (NULL: a sync run in-process).
    job_id BIGINT,
    worker TEXT NOT NULL,
    -- schedule, refresh, capture, or in-process (an action, monitor --once, a Refresh with no
    -- worker running).
    reason TEXT NOT NULL,
    -- 0 for a first attempt, n for the n-th retry.
    attempt INTEGER NOT NULL DEFAULT 0,
    deferred_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    summary JSONB NOT NULL
);
CREATE INDEX sync_runs_source_id_started_at_idx ON sync_runs (source_id, started_at);
CREATE INDEX sync_runs_job_id_idx ON sync_runs (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX sync_runs_finished_at_idx ON sync_runs (finished_at);

-- Rosetta's name for each procrastinate worker (procrastinate_workers keeps only an id and a
-- heartbeat): host, pid, concurrency, and whether it runs the scheduler.
CREATE TABLE queue_workers (
    worker_id BIGINT PRIMARY KEY REFERENCES procrastinate_workers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
