-- name: source_state
-- Whether the publication and the replication slot exist, the WAL level, and the WAL position
-- now (on a standby, the last replayed one): what a change found by this read is dated with.
SELECT
    EXISTS (
        SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %(publication)s
    ) AS publication_exists,
    EXISTS (
        SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = %(slot)s
    ) AS slot_exists,
    pg_catalog.current_setting('wal_level') AS wal_level,
    (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
          ELSE pg_catalog.pg_current_wal_lsn() END)::text AS lsn

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
    pg_catalog.set_config('bytea_output', 'hex', false),
    -- A catalog query gains nothing from JIT, and compiling costs a quarter of a second.
    pg_catalog.set_config('jit', 'off', false)

-- name: publication_tables
-- Every table the publication carries (FOR ALL TABLES, FOR TABLES IN SCHEMA, partitions as the
-- publication publishes them), one row per table, with a digest of the raw catalog facts of all
-- its live columns instead of the columns themselves: comparing digests finds the changed
-- tables, whose columns `table_columns` then reads. The digest sums a 64-bit hash per column
-- (each hash covers the column's attnum, so order counts) of everything Rosetta records of it:
-- name, type (with its name and its schema's name, so renaming either is seen), typmod,
-- nullability, identity, generation, default, collation, primary key, whether the stream
-- carries the column and whether it flags it as key. The rules for "carried" and "key" are the
-- ones pgoutput applies when it writes a Relation message; they are the same in
-- `table_columns` (keep the two in step). Columns and settings that a server version lacks
-- (column lists before 15, publish_generated_columns before 18) are read through to_jsonb, so
-- one query serves PostgreSQL 14 to 18. pg_catalog needs no SELECT grant on the tables.
WITH {members},
pub AS (
    SELECT p.oid, p.puballtables, to_jsonb(p) ->> 'pubgencols' AS gencols
    FROM pg_catalog.pg_publication p
    WHERE p.pubname = %(publication)s
),
published AS (
    SELECT
        m.relid,
        pub.gencols,
        -- The publication's own column list for the relation it publishes (PostgreSQL 15+).
        CASE WHEN NOT pub.puballtables
             THEN pg_catalog.string_to_array(
                     pg_catalog.btrim(to_jsonb(pr) ->> 'prattrs', '[]'), ',')::int2[]
        END AS listed,
        c.relreplident,
        ri.keycols
    FROM pub
    CROSS JOIN members m
    JOIN pg_catalog.pg_class c ON c.oid = m.relid
    LEFT JOIN pg_catalog.pg_publication_rel pr
        ON pr.prpubid = pub.oid AND pr.prrelid = m.relid
    LEFT JOIN LATERAL (
        -- The index the stream's key flags come from: the primary key for REPLICA IDENTITY
        -- DEFAULT (not a deferrable one), the chosen index for USING INDEX. Once per table.
        SELECT i.indkey::int2[] AS keycols
        FROM pg_catalog.pg_index i
        WHERE i.indrelid = c.oid AND i.indimmediate
          AND ((c.relreplident = 'd' AND i.indisprimary AND (i.indisvalid OR c.relkind = 'p'))
               OR (c.relreplident = 'i' AND i.indisreplident AND i.indisvalid))
        LIMIT 1
    ) ri ON true
),
cols AS (
    SELECT
        a.attrelid,
        count(*) AS column_count,
        sum(pg_catalog.hashtextextended(concat_ws(',',
            a.attnum, length(a.attname), a.attname, a.atttypid, a.atttypmod, a.attnotnull,
            a.attidentity::text, a.attgenerated::text, a.attcollation,
            t.typname, length(tn.nspname), tn.nspname,
            COALESCE(a.attnum = ANY (pk.conkey), false), COALESCE(d.adbin::text, '-'),
            CASE
                WHEN m.listed IS NOT NULL THEN a.attnum = ANY (m.listed)
                WHEN a.attgenerated = '' THEN true
                ELSE a.attgenerated = 's' AND m.gencols IS NOT DISTINCT FROM 's'
            END,
            CASE m.relreplident
                WHEN 'f' THEN true
                WHEN 'n' THEN false
                ELSE COALESCE(a.attnum = ANY (m.keycols), false)
            END
        ), 0)) AS digest
    FROM published m
    JOIN pg_catalog.pg_attribute a
        ON a.attrelid = m.relid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
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
FROM published m
JOIN pg_catalog.pg_class c ON c.oid = m.relid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN cols ON cols.attrelid = c.oid

-- name: row_filters
-- The row filter (WHERE clause, PostgreSQL 15+) of each table of the publication that has one,
-- as pgoutput applies it: a table the publication also carries through FOR ALL TABLES or FOR
-- TABLES IN SCHEMA is not filtered.
SELECT pr.prrelid::bigint AS table_oid, pg_catalog.pg_get_expr(pr.prqual, pr.prrelid) AS row_filter
FROM pg_catalog.pg_publication p
JOIN pg_catalog.pg_publication_rel pr ON pr.prpubid = p.oid
JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
WHERE p.pubname = %(publication)s
  AND pr.prqual IS NOT NULL
  AND (%(oids)s::oid[] IS NULL OR pr.prrelid = ANY (%(oids)s::oid[]))
  AND NOT p.puballtables
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_publication_namespace pn
      WHERE pn.pnpubid = p.oid AND pn.pnnspid = c.relnamespace
  )

-- name: table_columns
-- Every live column of each table in %(oids)s, as a JSON object keyed by column name, in attnum
-- order: what Rosetta stores as a table's schema. `carried` says whether the replication stream
-- carries the column and `not_carried` why not ('generated': a generated column the publication
-- does not publish; 'virtual': a virtual generated column, never published; 'column_list':
-- outside the publication's column list); `in_replica_identity` is the key flag the stream
-- sets on it. The rules are `publication_tables`' (keep the two in step).
WITH {members},
pub AS (
    SELECT p.oid, p.puballtables, to_jsonb(p) ->> 'pubgencols' AS gencols
    FROM pg_catalog.pg_publication p
    WHERE p.pubname = %(publication)s
),
published AS (
    SELECT
        m.relid,
        pub.gencols,
        CASE WHEN NOT pub.puballtables
             THEN pg_catalog.string_to_array(
                     pg_catalog.btrim(to_jsonb(pr) ->> 'prattrs', '[]'), ',')::int2[]
        END AS listed
    FROM pub
    CROSS JOIN members m
    LEFT JOIN pg_catalog.pg_publication_rel pr
        ON pr.prpubid = pub.oid AND pr.prrelid = m.relid
    WHERE m.relid = ANY (%(oids)s::oid[])
)
SELECT
    c.oid::bigint AS table_oid,
    COALESCE(cols.columns::text, '{}') AS columns
FROM published m
JOIN pg_catalog.pg_class c ON c.oid = m.relid
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
LEFT JOIN LATERAL (
    SELECT i.indkey::int2[] AS keycols
    FROM pg_catalog.pg_index i
    WHERE i.indrelid = c.oid AND i.indimmediate
      AND ((c.relreplident = 'd' AND i.indisprimary AND (i.indisvalid OR c.relkind = 'p'))
           OR (c.relreplident = 'i' AND i.indisreplident AND i.indisvalid))
    LIMIT 1
) ri ON true
LEFT JOIN LATERAL (
    SELECT json_object_agg(
        a.attname,
        json_build_object(
            'column_name', a.attname,
            'data_type', upper(pg_catalog.format_type(a.atttypid, NULL)),
            'full_type', pg_catalog.format_type(a.atttypid, a.atttypmod),
            'type_oid', a.atttypid::bigint,
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
            'generated', CASE a.attgenerated WHEN 's' THEN 'STORED' WHEN 'v' THEN 'VIRTUAL' END,
            'carried', a.carried,
            'not_carried', CASE
                WHEN a.carried THEN NULL
                WHEN a.attgenerated = 'v' THEN 'virtual'
                WHEN a.attgenerated = 's' AND m.gencols IS NULL THEN 'generated'
                WHEN m.listed IS NOT NULL THEN 'column_list'
                ELSE 'generated'
            END,
            'in_replica_identity', CASE c.relreplident
                WHEN 'f' THEN true
                WHEN 'n' THEN false
                ELSE COALESCE(a.attnum = ANY (ri.keycols), false)
            END
        )
        ORDER BY a.attnum
    ) AS columns
    FROM (
        SELECT
            att.*,
            row_number() OVER (ORDER BY att.attnum) AS ordinal_position,
            CASE
                WHEN m.listed IS NOT NULL THEN att.attnum = ANY (m.listed)
                WHEN att.attgenerated = '' THEN true
                ELSE att.attgenerated = 's' AND m.gencols IS NOT DISTINCT FROM 's'
            END AS carried
        FROM pg_catalog.pg_attribute att
        WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped
    ) a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
) cols ON true

-- name: available_tables
-- Ordinary and partitioned tables of the source that the publication does not carry.
WITH {members}
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\_%%'
  AND c.oid NOT IN (SELECT relid FROM members)
ORDER BY 1, 2

-- name: members
-- A fragment, the `{members}` of the queries above: the CTE `members(relid)`, every relation the
-- publication %(publication)s publishes, as pg_get_publication_tables() lists them (FOR ALL
-- TABLES, FOR TABLE, FOR TABLES IN SCHEMA; a partitioned table as its leaf partitions, or as
-- itself with publish_via_partition_root, whose partitions are then left out), read from the
-- catalogs themselves. That function opens every table without a column list on PostgreSQL
-- 16+, taking a lock on each: one table held by a long ALTER TABLE would stall the whole read.
-- Publishable: an ordinary or partitioned, permanent, user (OID >= 16384) table. The listed
-- tables are read through the publication's own OID (LATERAL), and each relation by its OID,
-- so that the read costs what the publication holds, not what the database holds (a database
-- of a thousand publications).
candidates AS (
    SELECT c.oid AS relid, p.pubviaroot AS viaroot
    FROM pg_catalog.pg_publication p
    JOIN pg_catalog.pg_class c
        ON c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND c.oid >= 16384
       AND CASE WHEN p.pubviaroot THEN NOT c.relispartition ELSE c.relkind = 'r' END
    WHERE p.pubname = %(publication)s AND p.puballtables
    UNION
    SELECT tree.relid, p.pubviaroot
    FROM pg_catalog.pg_publication p
    CROSS JOIN LATERAL (
        SELECT pr.prrelid AS relid FROM pg_catalog.pg_publication_rel pr
        WHERE pr.prpubid = p.oid
        UNION
        SELECT c.oid
        FROM pg_catalog.pg_publication_namespace pn
        JOIN pg_catalog.pg_class c ON c.relnamespace = pn.pnnspid AND c.relkind IN ('r', 'p')
        WHERE pn.pnpubid = p.oid
    ) listed
    CROSS JOIN LATERAL (
        SELECT lc.relkind FROM pg_catalog.pg_class lc WHERE lc.oid = listed.relid OFFSET 0
    ) lc
    CROSS JOIN LATERAL (
        -- pg_partition_tree() has no rows for a table outside any partition tree.
        SELECT listed.relid, 0 AS level, true AS isleaf WHERE lc.relkind = 'r'
        UNION
        SELECT pt.relid, pt.level, pt.isleaf
        FROM pg_catalog.pg_partition_tree(listed.relid) pt
        WHERE lc.relkind = 'p'
    ) tree
    CROSS JOIN LATERAL (
        SELECT c.oid FROM pg_catalog.pg_class c
        WHERE c.oid = tree.relid
          AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND c.oid >= 16384
        OFFSET 0
    ) c
    WHERE p.pubname = %(publication)s AND NOT p.puballtables
      AND CASE WHEN p.pubviaroot THEN tree.level = 0 ELSE tree.isleaf END
),
membership AS (
    SELECT cand.relid
    FROM candidates cand
    WHERE NOT (cand.viaroot AND EXISTS (
        SELECT 1
        FROM pg_catalog.pg_partition_ancestors(cand.relid) anc
        JOIN candidates published ON published.relid = anc.relid
        WHERE anc.relid <> cand.relid
    ))
),
members AS (
    -- Through an array: the planner then expects a few members, not a guess drawn from the
    -- whole catalog, and reads each member's rows by index.
    SELECT unnest(ARRAY(SELECT relid FROM membership)) AS relid
)

-- name: members_named
-- `members` for the tables %(oids)s alone (those a captured DDL names): which of them the
-- publication publishes, by the same rules, reading only those tables and their partition
-- ancestors, so that its cost does not grow with the publication.
named AS (
    SELECT o.relid FROM unnest(%(oids)s::oid[]) AS o (relid)
    UNION
    SELECT anc.relid
    FROM unnest(%(oids)s::oid[]) AS o (relid)
    CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(o.relid) AS anc
),
candidates AS (
    SELECT c.oid AS relid, p.pubviaroot AS viaroot
    FROM pg_catalog.pg_publication p
    JOIN pg_catalog.pg_class c
        ON c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND c.oid >= 16384
       AND CASE WHEN p.pubviaroot THEN NOT c.relispartition ELSE c.relkind = 'r' END
       AND c.oid IN (SELECT relid FROM named)
    WHERE p.pubname = %(publication)s AND p.puballtables
    UNION
    SELECT tree.relid, p.pubviaroot
    FROM pg_catalog.pg_publication p
    JOIN (
        SELECT pr.prpubid AS pubid, pr.prrelid AS relid FROM pg_catalog.pg_publication_rel pr
        WHERE pr.prrelid IN (SELECT relid FROM named)
        UNION
        SELECT pn.pnpubid, c.oid
        FROM pg_catalog.pg_publication_namespace pn
        JOIN pg_catalog.pg_class c ON c.relnamespace = pn.pnnspid AND c.relkind IN ('r', 'p')
        WHERE c.oid IN (SELECT relid FROM named)
    ) listed ON listed.pubid = p.oid
    JOIN pg_catalog.pg_class lc ON lc.oid = listed.relid
    CROSS JOIN LATERAL (
        -- pg_partition_tree() has no rows for a table outside any partition tree.
        SELECT listed.relid, 0 AS level, true AS isleaf WHERE lc.relkind = 'r'
        UNION
        SELECT pt.relid, pt.level, pt.isleaf
        FROM pg_catalog.pg_partition_tree(listed.relid) pt
        WHERE lc.relkind = 'p'
    ) tree
    JOIN pg_catalog.pg_class c ON c.oid = tree.relid
    WHERE p.pubname = %(publication)s AND NOT p.puballtables
      AND tree.relid IN (SELECT relid FROM named)
      AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND c.oid >= 16384
      AND CASE WHEN p.pubviaroot THEN tree.level = 0 ELSE tree.isleaf END
),
members AS (
    SELECT cand.relid
    FROM candidates cand
    WHERE cand.relid = ANY (%(oids)s::oid[])
      AND NOT (cand.viaroot AND EXISTS (
        SELECT 1
        FROM pg_catalog.pg_partition_ancestors(cand.relid) anc
        JOIN candidates published ON published.relid = anc.relid
        WHERE anc.relid <> cand.relid
    ))
)

-- name: members_pg14
-- `members` for PostgreSQL 14, which has no FOR TABLES IN SCHEMA (pg_publication_namespace) and
-- whose pg_get_publication_tables() locks nothing.
members AS (
    SELECT DISTINCT gpt.relid
    FROM pg_catalog.pg_get_publication_tables(%(publication)s::text) AS gpt
)

-- name: members_named_pg14
-- `members_named` for PostgreSQL 14.
members AS (
    SELECT DISTINCT gpt.relid
    FROM pg_catalog.pg_get_publication_tables(%(publication)s::text) AS gpt
    WHERE gpt.relid = ANY (%(oids)s::oid[])
)
