-- depends: 0001.initial-schema
-- The seed's migration 007: one row per (table, version). The last guard against duplicate
-- versions written by concurrent monitors; syncs also serialize per source.

ALTER TABLE history_schema_evolution
    ADD CONSTRAINT unique_table_version_schema UNIQUE (table_metadata_list_id, version_schema);
