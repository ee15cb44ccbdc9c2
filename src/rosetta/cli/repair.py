"""Repair and diagnosis: `rosetta fix-schema-versions` and `rosetta doctor`."""

from __future__ import annotations

from typing import Annotated

import typer

from rosetta.cli.base import JsonOpt, app, context, print_json
from rosetta.errors import RosettaError


@app.command("fix-schema-versions")
def fix_schema_versions(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    source: Annotated[str | None, typer.Option(help="Repair one source only.")] = None,
) -> None:
    """Repair damaged history: duplicates, gaps, empty or phantom versions, missing INITIAL_LOAD,
    NULL schemas, and the missing unique constraint."""
    from rosetta import repair
    from rosetta.store import repository
    from rosetta.uow import unit_of_work

    ctx = context()
    ctx.logging(to_stderr=True)
    store = ctx.store()
    try:
        with unit_of_work(store):  # the plan: reads only
            src = repository.source_by_name(store, source) if source else None
            report = repair.plan(store, src.id if src else None)
            ids = {s.name: s.id for s in repository.list_sources(store)}
        label = "Would repair" if dry_run else "Repaired"
        for table in report.repaired:
            if not dry_run:
                with unit_of_work(store):  # one table, one transaction
                    repair.apply_table(store, ids[table.source], table)
            typer.echo(f"{label} {table.describe()}")
        heal = sorted(
            {t.source for t in report.tables if t.needs_schema or (t.changed and not t.versions)}
        )
        for name in heal:
            tables = [
                t.table
                for t in report.tables
                if t.source == name and (t.needs_schema or (t.changed and not t.versions))
            ]
            if dry_run:
                typer.echo(f"Would heal from source {name}: {', '.join(tables)}")
                continue
            from rosetta.sync import sync_source

            summary = sync_source(
                store,
                repository.source_by_id(store, ids[name]),
                ctx.box(),
                limits=ctx.limits(),
            )
            if summary.error:
                typer.echo(f"Could not heal from source {name}: {summary.error}")
            else:
                healed = summary.healed + [c.table for c in summary.changed]
                typer.echo(f"Healed from source {name}: {', '.join(healed) or 'nothing to do'}")
        if report.constraint_missing:
            if dry_run:
                typer.echo(
                    "Would add the unique constraint on (table_metadata_list_id, version_schema)"
                )
            else:
                with unit_of_work(store):
                    repair.add_constraint(store, report)
                if report.constraint_error:
                    typer.echo(f"Could not add the unique constraint: {report.constraint_error}")
                else:
                    typer.echo(
                        "Added the unique constraint on (table_metadata_list_id, version_schema)"
                    )
        unchanged = len(report.tables) - len(report.repaired)
        typer.echo(
            f"{len(report.repaired)} table(s) {'to repair' if dry_run else 'repaired'}, "
            f"{unchanged} already sound."
        )
    finally:
        store.close()


@app.command()
def doctor(
    source: Annotated[str | None, typer.Argument(help="Check one source.")] = None,
    table: Annotated[str | None, typer.Argument(help="Check one table of it.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show passing table checks too.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Diagnose the store, the monitor, sources and tables; each problem with its fix."""
    from rosetta import doctor as doc
    from rosetta.store import db, repository
    from rosetta.uow import unit_of_work

    ctx = context()
    diag = doc.Diagnosis()
    try:
        store = db.connect(ctx.store_url, check=False)
    except RosettaError as exc:
        diag.add("store", doc.FAIL, exc.message, "check ROSETTA_DATABASE_URL")
        store = None
    if store is not None:
        try:
            src = None
            if source:
                with unit_of_work(store):
                    try:
                        db.ensure_migrated(store)
                    except RosettaError:
                        pass  # the store check reports it
                    else:
                        src = repository.source_by_name(store, source)  # unknown: one line
            doc.diagnose(
                store,
                ctx.box(),
                src,
                table,
                limits=ctx.limits(),
                diag=diag,
                stalled_after=ctx.queue().stalled_after,
            )
        finally:
            store.close()
    if as_json:
        print_json(diag.to_json())
    else:
        subject = None
        hidden = 0
        for check in diag.checks:
            is_table = "/" in check.subject
            if check.status == doc.PASS and is_table and not (verbose or table):
                hidden += 1
                continue
            if check.subject != subject:
                subject = check.subject
                if subject:
                    typer.echo(subject)
            typer.echo(f"  {check.status}  {check.name:<17} {check.detail}")
            if check.fix:
                typer.echo(f"        fix: {check.fix}")
        counts = diag.counts()
        extra = f" ({hidden} passing table checks hidden; -v shows them)" if hidden else ""
        typer.echo(
            f"{counts['PASS']} passed, {counts['WARN']} warning(s), {counts['FAIL']} failed{extra}"
        )
    if diag.failed:
        raise typer.Exit(1)
