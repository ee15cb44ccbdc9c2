"""The job queue's tables in the store: procrastinate's own schema, as its installed version
ships it (``procrastinate.schema.SchemaManager.get_schema``).

Rosetta pins procrastinate to one minor release (pyproject.toml); a later release whose schema
changes comes with a migration after this one that applies procrastinate's own migration files
between the two versions (``procrastinate/sql/migrations``), so ``rosetta db upgrade`` upgrades
the queue with the store.
"""

from typing import Any

from yoyo import step

__depends__ = {"0011.capture-and-provenance"}


def apply_schema(conn: Any) -> None:
    from procrastinate.schema import SchemaManager

    with conn.cursor() as cursor:
        # No parameters: psycopg sends the script as it is, with its several statements.
        cursor.execute(SchemaManager.get_schema())


def drop_schema(conn: Any) -> None:
    with conn.cursor() as cursor:
        cursor.execute(
            """
            DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
                procrastinate_jobs, procrastinate_workers CASCADE;
            DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
                procrastinate_job_to_defer_v1 CASCADE;
            DO $$
            DECLARE f regprocedure;
            BEGIN
                FOR f IN SELECT oid::regprocedure FROM pg_proc
                         WHERE proname LIKE 'procrastinate%'
                           AND pronamespace = 'public'::regnamespace
                LOOP
                    EXECUTE 'DROP FUNCTION ' || f::text;
                END LOOP;
            END $$;
            """
        )


steps = [step(apply_schema, drop_schema)]
