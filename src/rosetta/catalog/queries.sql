-- name: source_state
-- Whether the publication and the replication slot exist, and the WAL level.
SELECT
    EXISTS (
        SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %(publication)s
    ) AS publication_exists,
    EXISTS (
        SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = %(slot)s
    ) AS slot_exists,
    pg_catalog.current_setting('wal_level') AS wal_level

-- name: stable_output
-- Pin the session settings that change how types and defaults are printed (search_path decides
-- which names are schema-qualified; TimeZone, DateStyle, IntervalStyle, extra_float_digits and
-- bytea_output print constants), so one column reads the same whatever the role's or the
-- database's settings: a DBA changing them must not look like a schema change.
SELECT
    pg_catalog.set_config('search_path', 'public', false),
    pg_catalog.set_config('TimeZone', 'UTC', false),
    pg_catalog.set_config('DateStyle', 'ISO, MDY', false),
    pg_catalog.set_config('IntervalStyle', 'postgres', false),
    pg_catalog.set_config('extra_float_digits', '1', false),
    pg_catalog.set_config('bytea_output', 'hex', false)

-- name: publication_tables
-- Every table the publication carries (FOR ALL TABLES, FOR TABLES IN SCHEMA, partitions as the
-- publication publishes them), one row per table, with a digest of the raw catalog facts of its
-- live columns (name, type, typmod, nullability, identity, generation, default, key, collation)
-- instead of the columns themselves: comparing digests finds the changed tables, whose columns
-- `table_columns` then reads. The digest sums a 64-bit hash per column (each hash covers the
-- column's attnum, so order counts). A publication's column list (PostgreSQL 15+) limits a
-- table to the columns it carries. pg_catalog needs no SELECT grant on the tables.
WITH pub AS (
    SELECT DISTINCT gpt.relid, gpt.attrs::int2[] AS attrs
    FROM pg_catalog.pg_publication p
    CROSS JOIN LATERAL pg_catalog.pg_get_publication_tables(p.pubname::text) AS gpt
    WHERE p.pubname = %(publication)s
),
cols AS (
    SELECT
        a.attrelid,
        count(*) FILTER (WHERE pub.attrs IS NULL OR a.attnum = ANY (pub.attrs)) AS column_count,
        sum(pg_catalog.hashtextextended(concat_ws(',',
            a.attnum, length(a.attname), a.attname, a.atttypid, a.atttypmod, a.attnotnull,
            a.attidentity::text, a.attgenerated::text, a.attcollation, t.typname, t.typnamespace,
            COALESCE(a.attnum = ANY (pk.conkey), false), COALESCE(d.adbin::text, '-')
        ), 0)) FILTER (WHERE pub.attrs IS NULL OR a.attnum = ANY (pub.attrs)) AS digest
    FROM pub
    JOIN pg_catalog.pg_attribute a
        ON a.attrelid = pub.relid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = a.attrelid AND pk.contype = 'p'
    GROUP BY a.attrelid
)
SELECT
    n.nspname::text AS schema_name,
    c.relname::text AS table_name,
    c.oid::bigint AS table_oid,
    c.relkind::text AS kind,
    c.relreplident::text AS replica_identity,
    pg_catalog.has_table_privilege(c.oid, 'SELECT') AS can_select,
    COALESCE(cols.column_count, 0) AS column_count,
    COALESCE(cols.digest::text, '') AS digest
FROM pub
JOIN pg_catalog.pg_class c ON c.oid = pub.relid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN cols ON cols.attrelid = c.oid

-- name: publication_tables_pre15
-- `publication_tables` for servers before PostgreSQL 15, which have no publication column lists:
-- a publication carries every column of its tables.
WITH pub AS (
    SELECT DISTINCT gpt.relid, NULL::int2[] AS attrs
    FROM pg_catalog.pg_publication p
    CROSS JOIN LATERAL pg_catalog.pg_get_publication_tables(p.pubname::text) AS gpt
    WHERE p.pubname = %(publication)s
),
cols AS (
    SELECT
        a.attrelid,
        count(*) FILTER (WHERE pub.attrs IS NULL OR a.attnum = ANY (pub.attrs)) AS column_count,
        sum(pg_catalog.hashtextextended(concat_ws(',',
            a.attnum, length(a.attname), a.attname, a.atttypid, a.atttypmod, a.attnotnull,
            a.attidentity::text, a.attgenerated::text, a.attcollation, t.typname, t.typnamespace,
            COALESCE(a.attnum = ANY (pk.conkey), false), COALESCE(d.adbin::text, '-')
        ), 0)) FILTER (WHERE pub.attrs IS NULL OR a.attnum = ANY (pub.attrs)) AS digest
    FROM pub
    JOIN pg_catalog.pg_attribute a
        ON a.attrelid = pub.relid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = a.attrelid AND pk.contype = 'p'
    GROUP BY a.attrelid
)
SELECT
    n.nspname::text AS schema_name,
    c.relname::text AS table_name,
    c.oid::bigint AS table_oid,
    c.relkind::text AS kind,
    c.relreplident::text AS replica_identity,
    pg_catalog.has_table_privilege(c.oid, 'SELECT') AS can_select,
    COALESCE(cols.column_count, 0) AS column_count,
    COALESCE(cols.digest::text, '') AS digest
FROM pub
JOIN pg_catalog.pg_class c ON c.oid = pub.relid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN cols ON cols.attrelid = c.oid

-- name: table_columns
-- The live columns the publication carries of each table in %(oids)s, as a JSON object keyed by
-- column name, in attnum order: what Rosetta stores as a table's schema.
WITH pub AS (
    SELECT gpt.relid, gpt.attrs::int2[] AS attrs
    FROM pg_catalog.pg_publication p
    CROSS JOIN LATERAL pg_catalog.pg_get_publication_tables(p.pubname::text) AS gpt
    WHERE p.pubname = %(publication)s
)
SELECT
    c.oid::bigint AS table_oid,
    COALESCE(cols.columns::text, '{}') AS columns
FROM pub
JOIN pg_catalog.pg_class c ON c.oid = pub.relid
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
LEFT JOIN LATERAL (
    SELECT json_object_agg(
        a.attname,
        json_build_object(
            'column_name', a.attname,
            'data_type', upper(pg_catalog.format_type(a.atttypid, NULL)),
            'full_type', pg_catalog.format_type(a.atttypid, a.atttypmod),
            'is_nullable', NOT a.attnotnull,
            'column_default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
            'is_primary_key', COALESCE(a.attnum = ANY (pk.conkey), false),
            'ordinal_position', a.ordinal_position,
            'attnum', a.attnum,
            'numeric_precision', CASE
                WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN ((a.atttypmod - 4) >> 16) & 65535
                WHEN a.atttypid = 21 THEN 16
                WHEN a.atttypid = 23 THEN 32
                WHEN a.atttypid = 20 THEN 64
                WHEN a.atttypid = 700 THEN 24
                WHEN a.atttypid = 701 THEN 53
            END,
            'numeric_scale', CASE
                WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN (a.atttypmod - 4) & 65535
                WHEN a.atttypid IN (20, 21, 23) THEN 0
            END,
            'character_maximum_length', CASE
                WHEN a.atttypid IN (1042, 1043) AND a.atttypmod >= 4 THEN a.atttypmod - 4
            END,
            'identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END,
            'generated', CASE a.attgenerated WHEN 's' THEN 'STORED' END
        )
        ORDER BY a.attnum
    ) AS columns
    FROM (
        SELECT att.*, row_number() OVER (ORDER BY att.attnum) AS ordinal_position
        FROM pg_catalog.pg_attribute att
        WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped
          AND (pub.attrs IS NULL OR att.attnum = ANY (pub.attrs))
    ) a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
) cols ON true
WHERE c.oid = ANY (%(oids)s::oid[])

-- name: table_columns_pre15
-- `table_columns` for servers before PostgreSQL 15, which have no publication column lists:
-- a publication carries every column of its tables.
WITH pub AS (
    SELECT gpt.relid, NULL::int2[] AS attrs
    FROM pg_catalog.pg_publication p
    CROSS JOIN LATERAL pg_catalog.pg_get_publication_tables(p.pubname::text) AS gpt
    WHERE p.pubname = %(publication)s
)
SELECT
    c.oid::bigint AS table_oid,
    COALESCE(cols.columns::text, '{}') AS columns
FROM pub
JOIN pg_catalog.pg_class c ON c.oid = pub.relid
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
LEFT JOIN LATERAL (
    SELECT json_object_agg(
        a.attname,
        json_build_object(
            'column_name', a.attname,
            'data_type', upper(pg_catalog.format_type(a.atttypid, NULL)),
            'full_type', pg_catalog.format_type(a.atttypid, a.atttypmod),
            'is_nullable', NOT a.attnotnull,
            'column_default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
            'is_primary_key', COALESCE(a.attnum = ANY (pk.conkey), false),
            'ordinal_position', a.ordinal_position,
            'attnum', a.attnum,
            'numeric_precision', CASE
                WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN ((a.atttypmod - 4) >> 16) & 65535
                WHEN a.atttypid = 21 THEN 16
                WHEN a.atttypid = 23 THEN 32
                WHEN a.atttypid = 20 THEN 64
                WHEN a.atttypid = 700 THEN 24
                WHEN a.atttypid = 701 THEN 53
            END,
            'numeric_scale', CASE
                WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN (a.atttypmod - 4) & 65535
                WHEN a.atttypid IN (20, 21, 23) THEN 0
            END,
            'character_maximum_length', CASE
                WHEN a.atttypid IN (1042, 1043) AND a.atttypmod >= 4 THEN a.atttypmod - 4
            END,
            'identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END,
            'generated', CASE a.attgenerated WHEN 's' THEN 'STORED' END
        )
        ORDER BY a.attnum
    ) AS columns
    FROM (
        SELECT att.*, row_number() OVER (ORDER BY att.attnum) AS ordinal_position
        FROM pg_catalog.pg_attribute att
        WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped
          AND (pub.attrs IS NULL OR att.attnum = ANY (pub.attrs))
    ) a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
) cols ON true
WHERE c.oid = ANY (%(oids)s::oid[])

-- name: available_tables
-- Ordinary and partitioned tables of the source that the publication does not carry.
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\_%%'
  AND c.oid NOT IN (
      SELECT gpt.relid
      FROM pg_catalog.pg_publication p
      CROSS JOIN LATERAL pg_catalog.pg_get_publication_tables(p.pubname::text) AS gpt
      WHERE p.pubname = %(publication)s
  )
ORDER BY 1, 2
