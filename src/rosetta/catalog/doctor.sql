-- name: source_health
SELECT
    pg_catalog.current_setting('wal_level') AS wal_level,
    current_user::text AS username,
    EXISTS (
        SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %(publication)s
    ) AS publication_exists,
    s.slot_name IS NOT NULL AS slot_exists,
    s.active AS slot_active,
    s.plugin::text AS slot_plugin,
    CASE WHEN s.slot_name IS NOT NULL AND NOT pg_catalog.pg_is_in_recovery()
         THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint
    END AS slot_retained_bytes
FROM (SELECT 1) AS one
LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = %(slot)s

-- name: table_health
-- For each (schema, table) asked about: does it exist, what is it, is it published, can the
-- source user read it, and can UPDATE/DELETE replicate.
WITH {members},
wanted AS (
    SELECT * FROM unnest(%(schemas)s::text[], %(tables)s::text[]) AS w (schema_name, table_name)
),
pub AS (SELECT relid FROM members)
SELECT
    w.schema_name,
    w.table_name,
    c.oid IS NOT NULL AS table_exists,
    c.relkind::text AS kind,
    (c.oid IN (SELECT relid FROM pub)
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                WHERE i.inhparent = c.oid AND i.inhrelid IN (SELECT relid FROM pub))
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                WHERE i.inhrelid = c.oid AND i.inhparent IN (SELECT relid FROM pub)))
        AS in_publication,
    (SELECT count(*) FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS column_count,
    CASE WHEN c.oid IS NOT NULL THEN pg_catalog.has_table_privilege(c.oid, 'SELECT') END
        AS can_select,
    c.relreplident::text AS replica_identity,
    EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
            WHERE k.conrelid = c.oid AND k.contype = 'p') AS has_primary_key
FROM wanted w
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema_name
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.table_name
ORDER BY w.schema_name, w.table_name

-- name: publication_table_names
-- The members CTE comes from the catalog queries (rosetta.catalog.reader.catalog_query).
WITH {members}
SELECT DISTINCT n.nspname::text, c.relname::text
FROM members m
JOIN pg_catalog.pg_class c ON c.oid = m.relid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
