-- name: repair_tables
-- The tables to look at, with their source.
SELECT t.id, t.source_id, s.name AS source_name, t.schema_name, t.table_name,
       (t.schema_table IS NULL OR t.schema_table = '{}'::jsonb) AS needs_schema
FROM table_metadata_list t
JOIN sources s ON s.id = t.source_id
WHERE %(source_id)s::bigint IS NULL OR t.source_id = %(source_id)s
ORDER BY s.name, t.schema_name, t.table_name

-- name: history_rows
SELECT id, version_schema, changes_type, schema_table_old, schema_table_new, changes, created_at
FROM history_schema_evolution
WHERE table_metadata_list_id = %(table_id)s
ORDER BY created_at, version_schema, id

-- name: delete_history_row
DELETE FROM history_schema_evolution WHERE id = %(id)s

-- name: park_history_row
-- Move a row out of the way of the unique constraint while versions are renumbered.
UPDATE history_schema_evolution SET version_schema = -version_schema - 1000000 WHERE id = %(id)s

-- name: rewrite_history_row
UPDATE history_schema_evolution
SET version_schema = %(version)s, changes_type = %(changes_type)s,
    schema_table_old = %(old)s, schema_table_new = %(new)s, changes = %(changes)s
WHERE id = %(id)s

-- name: insert_repaired_row
INSERT INTO history_schema_evolution (table_metadata_list_id, version_schema, changes_type,
                                      schema_table_old, schema_table_new, changes, created_at)
VALUES (%(table_id)s, %(version)s, %(changes_type)s, %(old)s, %(new)s, %(changes)s,
        %(created_at)s)

-- name: has_version_constraint
SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_constraint c
    WHERE c.conrelid = 'history_schema_evolution'::regclass
      AND c.contype IN ('u', 'p')
      AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
           FROM pg_catalog.pg_attribute a
           WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey))
          = ARRAY['table_metadata_list_id', 'version_schema']
)

-- name: add_version_constraint
ALTER TABLE history_schema_evolution
    ADD CONSTRAINT unique_table_version_schema UNIQUE (table_metadata_list_id, version_schema)

-- name: forget_fingerprint
-- Make the next sync look at this table again (a repaired history may lack its first version).
UPDATE table_metadata_list SET catalog_fingerprint = NULL WHERE id = %(id)s
