-- depends: 0010.table-events
-- Real-time capture, provenance and table identity by OID.
--
-- Provenance of each version: how it was found ('capture': from the source's DDL events, exact;
-- 'polling': by comparing the catalog, at most one interval late), the WAL position from which
-- the new schema applies (capture: the insert LSN at the DDL statement; polling: the LSN read at
-- detection, an upper bound), when the change happened (capture: its commit time when the source
-- tracks commit timestamps, else the time of its statement; polling: the detection time), and,
-- for capture, the events themselves (statements, roles, application, client, pid, xid). Rows
-- written before this migration have none of them: their created_at is all that is known.
ALTER TABLE history_schema_evolution
    ADD COLUMN detected_by TEXT
        CONSTRAINT history_schema_evolution_detected_by_check
        CHECK (detected_by IN ('capture', 'polling')),
    ADD COLUMN lsn PG_LSN,
    ADD COLUMN changed_at TIMESTAMPTZ,
    ADD COLUMN provenance JSONB;

-- Capture state per source: whether Rosetta installed its event triggers there, and the source's
-- transaction snapshot as of the last events read (events of transactions it already saw are
-- consumed; the others are still to come), kept in the transaction of the sync that read them.
ALTER TABLE sources
    ADD COLUMN capture_enabled BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN capture_installed_at TIMESTAMPTZ,
    ADD COLUMN capture_snapshot TEXT,
    ADD COLUMN capture_last_event_at TIMESTAMPTZ,
    ADD COLUMN capture_error TEXT,
    -- When a listener last said it holds a LISTEN connection to the source.
    ADD COLUMN capture_listener_at TIMESTAMPTZ,
    -- The last sync woken by a notification: seconds from the notification to its commit.
    ADD COLUMN capture_latency_seconds DOUBLE PRECISION;

-- A table is its OID: a renamed table keeps its row and history under its new name. A removed
-- table keeps its row (and old name) too, so a live table may now share a name with removed
-- ones; two live tables never do. Deferrable, so that one statement can swap two tables' names.
ALTER TABLE table_metadata_list
    DROP CONSTRAINT table_metadata_list_source_table_key,
    ADD CONSTRAINT table_metadata_list_live_name_key
        EXCLUDE USING btree (source_id WITH =, schema_name WITH =, table_name WITH =)
        WHERE (status <> 'removed')
        DEFERRABLE INITIALLY IMMEDIATE;

CREATE INDEX table_metadata_list_name_idx
    ON table_metadata_list (source_id, schema_name, table_name);

-- A sync woken by captured DDL reads the tracking rows of the tables its events name, by OID.
CREATE INDEX table_metadata_list_oid_idx ON table_metadata_list (source_id, table_oid);
