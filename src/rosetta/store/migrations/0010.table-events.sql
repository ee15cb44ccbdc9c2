-- depends: 0009.webhook-severity
-- When a table left its publication, came back, or had its missing schema healed: the times the
-- table page's timeline shows between its versions. table_metadata_list keeps only the latest of
-- each (removed_at is cleared when the table comes back; healed_at is overwritten), so a trigger
-- on it writes every change of them here, whoever makes it (a sync, a repair).

CREATE TABLE table_events (
    id BIGSERIAL PRIMARY KEY,
    table_metadata_list_id BIGINT NOT NULL REFERENCES table_metadata_list (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT table_events_event_check CHECK (event IN ('removed', 're-added', 'healed'))
);

CREATE INDEX table_events_table_idx ON table_events (table_metadata_list_id, created_at);

CREATE FUNCTION rosetta_table_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'removed' AND OLD.status <> 'removed' THEN
        INSERT INTO table_events (table_metadata_list_id, event, created_at)
        VALUES (NEW.id, 'removed', coalesce(NEW.removed_at, now()));
    ELSIF OLD.status = 'removed' AND NEW.status <> 'removed' THEN
        INSERT INTO table_events (table_metadata_list_id, event, created_at)
        VALUES (NEW.id, 're-added', coalesce(NEW.updated_at, now()));
    END IF;
    IF NEW.healed_at IS NOT NULL AND NEW.healed_at IS DISTINCT FROM OLD.healed_at THEN
        INSERT INTO table_events (table_metadata_list_id, event, created_at)
        VALUES (NEW.id, 'healed', NEW.healed_at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER table_metadata_list_events
    AFTER UPDATE OF status, healed_at ON table_metadata_list
    FOR EACH ROW EXECUTE FUNCTION rosetta_table_events();

-- What happened before this migration: only the latest removal and heal are known.
INSERT INTO table_events (table_metadata_list_id, event, created_at)
SELECT id, 'removed', removed_at FROM table_metadata_list
WHERE status = 'removed' AND removed_at IS NOT NULL;

INSERT INTO table_events (table_metadata_list_id, event, created_at)
SELECT id, 'healed', healed_at FROM table_metadata_list WHERE healed_at IS NOT NULL;
