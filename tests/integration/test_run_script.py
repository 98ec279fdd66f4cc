"""deploy/run.sh (`make run`): starts its own PostgreSQL and the gateway,
refuses a second run on the same data folder, and stops everything on
SIGTERM."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import requests

from tally import BUILD, ROOT, free_port, wait_for

RUN = os.path.join(ROOT, "deploy", "run.sh")
PG = os.path.join(ROOT, "deploy", "pg.sh")


def clean_env(**extra):
    """The caller's environment without Tally settings or a database URL,
    so that run.sh starts its own PostgreSQL."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TALLY_") and k not in ("DATABASE_URL", "PGHOST", "PGPORT")}
    env.update(extra)
    return env


def healthy(url):
    try:
        return requests.get(url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_run_script_starts_refuses_a_second_run_and_stops_everything():
    data = tempfile.mkdtemp(prefix="tally-run-", dir="/tmp")
    os.chmod(data, 0o755)              # the postgres user must reach it
    http = f"127.0.0.1:{free_port()}"
    pg_port = free_port()
    env = clean_env(TALLY_BUILD_DIR=BUILD, TALLY_DATA_DIR=data, TALLY_PG_PORT=str(pg_port),
                    TALLY_HTTP_ADDR=http, TALLY_MESH_BIND=f"tcp://127.0.0.1:{free_port()}",
                    TALLY_OPS_ADDR=f"127.0.0.1:{free_port()}")
    log = open(os.path.join(data, "run-1.out"), "wb")
    first = subprocess.Popen(["bash", RUN], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    url = f"http://{http}"
    socket_file = os.path.join(data, "socket", f".s.PGSQL.{pg_port}")
    try:
        wait_for(lambda: healthy(url), "run.sh's gateway", timeout=90)
        assert first.poll() is None
        assert os.path.exists(socket_file), "run.sh started its own PostgreSQL"
        # The mesh runs with CURVE, each service on its own key: all ready
        wait_for(lambda: requests.get(url + "/readyz", timeout=2).status_code == 200,
                 "every service ready over CURVE", timeout=120)
        keys = os.path.join(data, "keys")
        assert sorted(os.listdir(os.path.join(keys, "allow"))) == \
            ["analytics", "auth", "event", "mailer", "operator", "tracker"]
        assert "mesh backend uses CURVE" in open(os.path.join(data, "logs",
                                                              "tally-gateway.log")).read()
        status = subprocess.run(
            [os.path.join(BUILD, "deploy", "tallyctl"), "status"], capture_output=True,
            text=True, timeout=60,
            env=clean_env(TALLY_MESH=env["TALLY_MESH_BIND"],
                          TALLY_CURVE_CLIENT_CERT=os.path.join(keys, "operator_secret"),
                          TALLY_CURVE_SERVER_PUBLIC=os.path.join(keys, "gateway")))
        assert status.returncode == 0 and "tracker" in status.stdout, status

        second = subprocess.run(["bash", RUN], env=env, capture_output=True, text=True,
                                timeout=60, start_new_session=True)
        assert second.returncode != 0
        assert data in second.stderr, second.stderr
        assert healthy(url), "the refused second run left the first one alone"

        os.kill(first.pid, signal.SIGTERM)        # the group leader only
        rc = first.wait(60)
        assert rc == 0, open(os.path.join(data, "run-1.out")).read()
        assert not healthy(url)
        assert not os.path.exists(socket_file), "PostgreSQL still has its socket"
        assert not os.path.exists(os.path.join(data, "pgdata", "postmaster.pid")), \
            "PostgreSQL is still running"
        gateway_log = open(os.path.join(data, "logs", "tally-gateway.log")).read()
        assert "stopped" in gateway_log
        assert "Sanitizer" not in gateway_log, gateway_log[-3000:]
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGTERM)
            try:
                first.wait(60)
            except subprocess.TimeoutExpired:
                pass
        subprocess.run(["bash", PG, "stop", data], capture_output=True, timeout=90)
        log.close()
        # Give the server a moment to remove its files, then clean up.
        time.sleep(0.1)
        shutil.rmtree(data, ignore_errors=True)
