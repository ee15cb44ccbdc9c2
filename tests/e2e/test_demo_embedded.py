"""The README's main job on a fresh machine: `rosetta demo` on the embedded store, then the printed
`psql` command adds a table and the monitor tracks it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from rosetta.pg.server import make_reachable_dir
from tests.conftest import ROSETTA
from tests.e2e.test_serve import TOKEN_RE, Server, request


def test_demo_on_the_embedded_store(tmp_path: Path) -> None:
    home = make_reachable_dir("rosetta-demo-test-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    log_file = tmp_path / "logs" / "app.log"
    env.update(
        ROSETTA_DATA_DIR=str(home / ".rosetta"),
        ROSETTA_LOG_FILE=str(log_file),
        ROSETTA_MONITOR_INTERVAL="1",
    )
    server = Server(env, tmp_path / "demo.out", command="demo")
    try:
        server.wait_healthy(timeout=120)
        output = server.output()
        token = TOKEN_RE.findall(output)[0]
        command = re.search(r"PGPASSFILE=(\S+) psql \"([^\"]+)\" -c '([^']+)'", output)
        assert command is not None, output
        pgpass, conninfo, statement = command.groups()
        assert statement == (
            "ALTER PUBLICATION rosetta_publication SET TABLE customers, orders, products, "
            "shipments;"
        )
        assert oct(Path(pgpass).stat().st_mode & 0o777) == "0o600"
        assert Path(pgpass).read_text().split(":")[-1].strip() not in output  # no password shown

        # The printed command works as printed (psql reads the password from the pgpass file).
        psql = shutil.which("psql")
        assert psql is not None, "the psql client is needed for this test"
        done = subprocess.run(
            [psql, conninfo, "-c", statement],
            env=dict(env, PGPASSFILE=pgpass),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        # The demo source reads with a role of its own, never the store's superuser.
        role = subprocess.run(
            [
                psql,
                conninfo,
                "-Atc",
                "SELECT rolsuper, rolreplication, rolcreaterole, rolcreatedb "
                "FROM pg_roles WHERE rolname = 'rosetta_demo'",
            ],
            env=dict(env, PGPASSFILE=pgpass),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert role.stdout.strip() == "f|f|f|f", role.stderr

        deadline = time.monotonic() + 30
        line = "Added new table tracking with schema: shipments"
        while time.monotonic() < deadline and line not in log_file.read_text():
            time.sleep(0.2)
        assert line in log_file.read_text()
        status, sources = request(f"{server.base}/api/v1/sources", token)
        assert status == 200 and [s["name"] for s in sources] == ["demo"]
        assert sources[0]["username"] == "rosetta_demo"
    finally:
        server.stop()
        subprocess.run([ROSETTA, "db", "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)
