-- depends: 0002.unique-constraint-schema-version
-- History is append-only: no UPDATE or DELETE of a history row, except by a repair that says so
-- (SET LOCAL rosetta.history_maintenance = 'on'), and by deleting the table or source it belongs
-- to, which Rosetta does the same way.

CREATE FUNCTION rosetta_history_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('rosetta.history_maintenance', true), '') = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'history_schema_evolution is append-only (% of version % refused)',
        TG_OP, OLD.version_schema
        USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER history_schema_evolution_append_only
    BEFORE UPDATE OR DELETE ON history_schema_evolution
    FOR EACH ROW EXECUTE FUNCTION rosetta_history_append_only();

CREATE TABLE monitor_heartbeats (
    monitor_id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    interval_seconds DOUBLE PRECISION NOT NULL,
    last_cycle_started_at TIMESTAMPTZ,
    last_cycle_finished_at TIMESTAMPTZ,
    last_cycle_duration_seconds DOUBLE PRECISION,
    last_cycle_outcome TEXT,
    last_cycle_summary JSONB
);
