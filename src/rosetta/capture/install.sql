-- Rosetta's real-time capture, installed into a source database (`rosetta capture install`).
--
-- Run as one transaction by a role that may create event triggers (a superuser on PostgreSQL
-- 14-18, or a managed service's admin role). Idempotent: a second run leaves one set of objects
-- and keeps every event already recorded; it replaces the functions and re-creates the triggers,
-- so it also upgrades an older install in place.
--
-- The contract with Rosetta's reader (rosetta.capture): the table rosetta_capture.ddl_events,
-- one row per relevant object per statement, and NOTIFY rosetta_capture with the statement's
-- first event id (delivered at commit). What is never recorded: statements other than the
-- table-related tags below (roles, passwords, user mappings, servers never reach the functions),
-- and the text of any statement that looks like it carries a secret (statement is NULL).

-- name: install
CREATE SCHEMA IF NOT EXISTS rosetta_capture;
REVOKE ALL ON SCHEMA rosetta_capture FROM PUBLIC;

CREATE TABLE IF NOT EXISTS rosetta_capture.ddl_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid pg_catalog.xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    event_time timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    lsn pg_catalog.pg_lsn NOT NULL,
    command_tag text NOT NULL,
    object_type text NOT NULL,
    object_identity text,
    table_oid oid,
    schema_name text,
    table_name text,
    publication_name text,
    statement text,
    session_user_name text,
    current_user_name text,
    application_name text,
    client_addr inet,
    backend_pid int
);
CREATE INDEX IF NOT EXISTS ddl_events_xid_idx ON rosetta_capture.ddl_events (xid);
CREATE INDEX IF NOT EXISTS ddl_events_event_time_idx ON rosetta_capture.ddl_events (event_time);
REVOKE ALL ON TABLE rosetta_capture.ddl_events FROM PUBLIC;

-- The statement as recorded: current_query() holds the whole query string the client sent
-- (possibly several statements), so any string that looks like it may carry a secret is withheld:
-- a password, a role or user created or altered (its password may be hashed, unnamed), a user
-- mapping, server or subscription (their options and connection strings hold passwords). A
-- `SET ROLE` is not a secret: migrations use it, and the statement after it is kept.
CREATE OR REPLACE FUNCTION rosetta_capture.statement_text(query text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE
        WHEN query ~*
            '(password|encrypted|user[[:space:]]+mapping|(create|alter)[[:space:]]+(server|role|user|subscription)|connection)'
        THEN NULL
        ELSE pg_catalog.left(query, 10000)
    END
$fn$;

-- Every function pins search_path to pg_catalog (then pg_temp, searched last), so operators and
-- unqualified catalog names resolve there whoever runs the DDL; Rosetta's objects are qualified.

-- One event row, with who, where and when. Inside these SECURITY DEFINER functions current_user
-- is their owner (the installing role), so the statement's effective role is read from the
-- `role` setting (SET ROLE), else it is the session user. A DDL run inside another SECURITY
-- DEFINER function, or by a function with SET ROLE of its own, is recorded under the role of the
-- session (or of its SET ROLE), not the function's owner.
CREATE OR REPLACE FUNCTION rosetta_capture.record(
    p_command_tag text,
    p_object_type text,
    p_object_identity text,
    p_table_oid oid,
    p_schema_name text,
    p_table_name text,
    p_publication_name text
)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
    INSERT INTO rosetta_capture.ddl_events (
        lsn, command_tag, object_type, object_identity, table_oid, schema_name, table_name,
        publication_name, statement, session_user_name, current_user_name, application_name,
        client_addr, backend_pid
    ) VALUES (
        pg_catalog.pg_current_wal_insert_lsn(), p_command_tag, p_object_type, p_object_identity,
        p_table_oid, p_schema_name, p_table_name, p_publication_name,
        rosetta_capture.statement_text(pg_catalog.current_query()),
        SESSION_USER,
        CASE WHEN pg_catalog.current_setting('role') = 'none'
             THEN SESSION_USER::text
             ELSE pg_catalog.current_setting('role') END,
        pg_catalog.current_setting('application_name'),
        pg_catalog.inet_client_addr(),
        pg_catalog.pg_backend_pid()
    )
    RETURNING id
$fn$;

-- ddl_command_end: what CREATE/ALTER TABLE, CREATE TABLE AS, SELECT INTO, CREATE/ALTER INDEX and
-- CREATE/ALTER PUBLICATION did. One row per table (or publication, or publication member); an
-- index only when it is a primary key or replica identity index, and only when its table has no
-- row of this statement already.
CREATE OR REPLACE FUNCTION rosetta_capture.on_ddl_command_end()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    cmd record;
    rel record;
    new_id bigint;
    first_id bigint;
    seen oid[] := '{}';
BEGIN
    BEGIN
        FOR cmd IN
            SELECT c.command_tag, c.object_type, c.object_identity, c.objid,
                   c.object_type = 'index' AS is_index
            FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
            ORDER BY 5  -- tables and publications first, so an index of a recorded table is skipped
        LOOP
            new_id := NULL;
            IF cmd.object_type IN ('table', 'index') THEN
                SELECT c.oid, n.nspname, c.relname INTO rel
                FROM pg_catalog.pg_class AS c
                JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                WHERE c.oid = (
                    CASE WHEN cmd.is_index THEN (
                        SELECT i.indrelid FROM pg_catalog.pg_index AS i
                        WHERE i.indexrelid = cmd.objid
                          AND (i.indisprimary OR i.indisreplident))
                    ELSE cmd.objid END)
                  AND c.relkind IN ('r', 'p');
                IF FOUND AND NOT rel.oid = ANY (seen) THEN
                    seen := seen || rel.oid;
                    new_id := rosetta_capture.record(
                        cmd.command_tag, cmd.object_type, cmd.object_identity,
                        rel.oid, rel.nspname, rel.relname, NULL);
                END IF;
            ELSIF cmd.object_type = 'publication' THEN
                new_id := rosetta_capture.record(
                    cmd.command_tag, cmd.object_type, cmd.object_identity, NULL, NULL, NULL,
                    (SELECT p.pubname FROM pg_catalog.pg_publication AS p
                     WHERE p.oid = cmd.objid));
            ELSIF cmd.object_type = 'publication relation' THEN
                SELECT c.oid, n.nspname, c.relname, p.pubname INTO rel
                FROM pg_catalog.pg_publication_rel AS pr
                JOIN pg_catalog.pg_publication AS p ON p.oid = pr.prpubid
                JOIN pg_catalog.pg_class AS c ON c.oid = pr.prrelid
                JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                WHERE pr.oid = cmd.objid;
                new_id := rosetta_capture.record(
                    cmd.command_tag, cmd.object_type, cmd.object_identity,
                    rel.oid, rel.nspname, rel.relname, rel.pubname);
            ELSIF cmd.object_type = 'publication namespace' THEN
                -- PostgreSQL 15+ (FOR TABLES IN SCHEMA): the catalog is read only here.
                new_id := rosetta_capture.record(
                    cmd.command_tag, cmd.object_type, cmd.object_identity, NULL,
                    (SELECT n.nspname FROM pg_catalog.pg_publication_namespace AS pn
                     JOIN pg_catalog.pg_namespace AS n ON n.oid = pn.pnnspid
                     WHERE pn.oid = cmd.objid),
                    NULL,
                    (SELECT p.pubname FROM pg_catalog.pg_publication_namespace AS pn
                     JOIN pg_catalog.pg_publication AS p ON p.oid = pn.pnpubid
                     WHERE pn.oid = cmd.objid));
            END IF;
            first_id := coalesce(first_id, new_id);
        END LOOP;
        IF first_id IS NOT NULL THEN
            PERFORM pg_catalog.pg_notify('rosetta_capture', first_id::text);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- Never fail the user's DDL: the next poll of the catalog still sees the change.
        RAISE WARNING 'rosetta capture: could not record % (%): %; Rosetta sees the change at its next poll',
            tg_tag, SQLSTATE, SQLERRM;
    END;
END
$fn$;

-- sql_drop: DROP TABLE (each dropped table), DROP INDEX (the index may have been a replica
-- identity index: its table cannot be known any more, table_oid is NULL), DROP PUBLICATION, and
-- the members ALTER PUBLICATION ... DROP/SET TABLE took out of a publication.
CREATE OR REPLACE FUNCTION rosetta_capture.on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    obj record;
    new_id bigint;
    first_id bigint;
BEGIN
    BEGIN
        FOR obj IN
            SELECT d.object_type, d.object_identity, d.objid, d.schema_name, d.object_name,
                   d.address_names, d.address_args, d.original
            FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
        LOOP
            new_id := NULL;
            IF tg_tag = 'DROP TABLE' AND obj.object_type = 'table' THEN
                new_id := rosetta_capture.record(
                    tg_tag, obj.object_type, obj.object_identity, obj.objid,
                    obj.schema_name, obj.object_name, NULL);
            ELSIF tg_tag = 'DROP INDEX' AND obj.object_type = 'index' AND obj.original THEN
                new_id := rosetta_capture.record(
                    tg_tag, obj.object_type, obj.object_identity, NULL,
                    obj.schema_name, NULL, NULL);
            ELSIF tg_tag = 'DROP PUBLICATION' AND obj.object_type = 'publication' THEN
                new_id := rosetta_capture.record(
                    tg_tag, obj.object_type, obj.object_identity, NULL, NULL, NULL,
                    obj.address_names[1]);
            ELSIF tg_tag = 'ALTER PUBLICATION'
                  AND obj.object_type IN ('publication relation', 'publication namespace') THEN
                -- address_names: the table's schema and name (or the schema), address_args:
                -- the publication.
                new_id := rosetta_capture.record(
                    tg_tag, obj.object_type, obj.object_identity,
                    CASE WHEN obj.object_type = 'publication relation' THEN (
                        SELECT c.oid FROM pg_catalog.pg_class AS c
                        JOIN pg_catalog.pg_namespace AS n
                          ON n.oid = c.relnamespace
                        WHERE n.nspname = obj.address_names[1]
                          AND c.relname = obj.address_names[2]) END,
                    obj.address_names[1],
                    obj.address_names[2],
                    obj.address_args[1]);
            END IF;
            first_id := coalesce(first_id, new_id);
        END LOOP;
        IF first_id IS NOT NULL THEN
            PERFORM pg_catalog.pg_notify('rosetta_capture', first_id::text);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'rosetta capture: could not record % (%): %; Rosetta sees the change at its next poll',
            tg_tag, SQLSTATE, SQLERRM;
    END;
END
$fn$;

REVOKE ALL ON FUNCTION rosetta_capture.statement_text(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION rosetta_capture.record(text, text, text, oid, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION rosetta_capture.on_ddl_command_end() FROM PUBLIC;
REVOKE ALL ON FUNCTION rosetta_capture.on_sql_drop() FROM PUBLIC;

DROP EVENT TRIGGER IF EXISTS rosetta_capture_ddl;
CREATE EVENT TRIGGER rosetta_capture_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE',
                 'CREATE INDEX', 'ALTER INDEX', 'CREATE PUBLICATION', 'ALTER PUBLICATION')
    EXECUTE FUNCTION rosetta_capture.on_ddl_command_end();

DROP EVENT TRIGGER IF EXISTS rosetta_capture_drop;
CREATE EVENT TRIGGER rosetta_capture_drop ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP INDEX', 'DROP PUBLICATION', 'ALTER PUBLICATION')
    EXECUTE FUNCTION rosetta_capture.on_sql_drop();
