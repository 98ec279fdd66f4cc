"""Durable jobs (shared/tl_jobs.c) through real instances of the test
service: its job kind test.note (which writes a note), its schedule
test.hourly, notes.enqueue (a note and a job in one transaction), and the
operators' jobs.* methods through tallyctl over the mesh."""

import datetime
import os
import random
import subprocess
import time

import requests

from tally import binary, psql, unique, wait_for, wait_instances

NOTES = "/api/v1/test/notes"
LEASE_S = 60            # TL_JOBS_LEASE_MS


def mesh_env(gw):
    return dict(os.environ, TALLY_MESH=gw.mesh)


def tallyctl(gw, *args, timeout=150):
    out = subprocess.run([binary("tallyctl"), *args], env=mesh_env(gw),
                         capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout, out.stderr


def notes(gw, text):
    r = requests.get(gw.url + NOTES, params={"text": text}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def job_notes(gw, text):
    return [n for n in notes(gw, text) if n["source"] == "job"]


def enqueue(gw, **body):
    return requests.post(gw.url + NOTES, json=body, timeout=10)


def jobs_with(marker, columns="count(*)"):
    """Rows of testsvc.jobs whose payload carries `marker` (an ASCII word)."""
    assert marker.isalnum()
    return psql(f"SELECT {columns} FROM testsvc.jobs"
                f" WHERE position(convert_to('{marker}', 'UTF8') IN payload) > 0")


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def one_instance(cluster, name=None):
    gw = cluster.gateway()
    svc = cluster.service([gw], name=name)
    wait_instances(gw, 1)
    return gw, svc


def test_two_instances_run_each_schedule_occurrence_once(cluster):
    # Two instances, each reachable only through its own gateway, both
    # asked at once to run what is due at a time inside the same hour.
    gw_a, gw_b = cluster.gateway(), cluster.gateway()
    cluster.service([gw_a], name="jobs_a")
    cluster.service([gw_b], name="jobs_b")
    wait_instances(gw_a, 1)
    wait_instances(gw_b, 1)
    day = f"{random.randint(2200, 2900)}-06-15T{random.randint(0, 23):02d}"
    key = f"test.hourly@{day}:00:00Z"
    runs = [subprocess.Popen([binary("tallyctl"), "jobs", "run-due", "testsvc", "--at", at],
                             env=mesh_env(gw), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for gw, at in ((gw_a, f"{day}:10:00Z"), (gw_b, f"{day}:59:59Z"))]
    for run in runs:
        out, err = run.communicate(timeout=150)
        assert run.returncode == 0, err
        assert out.startswith("ran "), out
    # Asked again, through either instance, later in that hour: nothing new
    for gw in (gw_a, gw_b):
        rc, out, err = tallyctl(gw, "jobs", "run-due", "testsvc", "--at", f"{day}:30:00Z")
        assert rc == 0, err
    ran = job_notes(gw_a, key)
    assert len(ran) == 1, ran
    # (attempt 2 when one instance's claim, on its later clock, took the
    # job over from the other's before that one began it: still one run)
    assert ran[0]["job_key"] == key and ran[0]["attempt"] in (1, 2)
    assert psql(f"SELECT count(*) FROM testsvc.jobs WHERE unique_key = '{key}'") == "1"


def test_a_crashed_workers_job_runs_again_once_its_lease_expires(cluster):
    # The job is due 20 s from now: no jobs thread (of this test or of any
    # other run on this database) takes it before the victim is told to run
    # what is due then, on the controlled clock, and sleeps in it.
    gw = cluster.gateway()
    victim = cluster.service([gw], name="victim")
    wait_instances(gw, 1)
    marker = unique("crash")
    now = datetime.datetime.now(datetime.timezone.utc)
    due = rfc3339(now + datetime.timedelta(seconds=20))
    assert enqueue(gw, text=marker, sleep_ms=15000, run_at=due).status_code == 201
    running = subprocess.Popen([binary("tallyctl"), "jobs", "run-due", "testsvc", "--at", due],
                               env=mesh_env(gw), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: jobs_with(marker, "locked_by || ' ' || attempts") == "victim 1",
             "the job running on the victim", timeout=10)
    victim.kill9()
    running.communicate(timeout=150)
    assert running.returncode != 0                # the gateway lost its worker
    wait_instances(gw, 0)
    survivor = cluster.service([gw], name="survivor")
    wait_instances(gw, 1)

    # Its lease (a minute of real time) still holds at the time it is due
    rc, out, err = tallyctl(gw, "jobs", "run-due", "testsvc", "--at", due)
    assert rc == 0, err
    assert job_notes(gw, marker) == []
    assert jobs_with(marker, "attempts") == "1"

    # At a time past the lease it runs again, as attempt 2, on the survivor
    later = rfc3339(now + datetime.timedelta(seconds=LEASE_S + 30))
    rc, out, err = tallyctl(gw, "jobs", "run-due", "testsvc", "--at", later)
    assert rc == 0, err
    ran = job_notes(gw, marker)
    assert [n["attempt"] for n in ran] == [2], ran
    assert jobs_with(marker, "attempts || ' ' || locked_by || ' ' || (done_at IS NOT NULL)") \
        == "2 survivor true"
    assert survivor.alive()


def test_a_failing_job_ends_dead_with_its_error_listed_and_can_be_retried(cluster):
    gw, _ = one_instance(cluster)
    marker = unique("fail")
    assert enqueue(gw, text=marker, fail=True, max_attempts=3).status_code == 201
    error = f"asked to fail: {marker}"

    def dead_line():
        rc, out, err = tallyctl(gw, "jobs", "list", "testsvc", "--state", "dead")
        assert rc == 0, err
        return next((line for line in out.splitlines() if error in line), None)

    # The jobs thread runs it three times (back-off 1 s, then 2 s) on its own
    wait_for(lambda: dead_line() is not None, "the job dead", timeout=30)
    fields = dead_line().split()
    job_id, state, kind, attempts = fields[:4]
    assert (state, kind, attempts) == ("dead", "test.note", "3/3")
    assert dead_line().endswith("error: " + error)
    assert job_notes(gw, marker) == []          # each failure rolled its work back
    assert [n["source"] for n in notes(gw, marker)] == ["request"]

    # Retry: it runs once more now, and dies again
    rc, out, err = tallyctl(gw, "jobs", "retry", "testsvc", job_id)
    assert rc == 0, err
    wait_for(lambda: (dead_line() or "").split()[3:4] == ["4/4"], "the retried job dead again",
             timeout=15)
    rc, out, err = tallyctl(gw, "jobs", "retry", "testsvc", "999999999999")
    assert rc == 1 and "404" in err


def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(cluster):
    gw, _ = one_instance(cluster)
    gone, kept = unique("rollback"), unique("commit")
    r = enqueue(gw, text=gone, rollback=True)
    assert r.status_code == 200 and r.json() == {"enqueued": False, "rolled_back": True}
    assert enqueue(gw, text=kept).status_code == 201
    wait_for(lambda: len(job_notes(gw, kept)) == 1, "the committed job to run", timeout=10)
    rc, out, err = tallyctl(gw, "jobs", "run-due", "testsvc")
    assert rc == 0, err
    assert notes(gw, gone) == []                # neither the row nor the job's
    assert jobs_with(gone) == "0"
    assert jobs_with(kept) == "1"


def test_a_new_job_starts_within_a_second_of_its_commit(cluster):
    # Measured generously (3 s) and on the database's clock: it shows that
    # an idle instance is woken by the commit, not a performance figure.
    gw, _ = one_instance(cluster)
    time.sleep(1.5)                             # the jobs thread is idle, listening
    for _ in range(3):
        marker = unique("wake")
        assert enqueue(gw, text=marker).status_code == 201
        wait_for(lambda: len(job_notes(gw, marker)) == 1, "the job to run", timeout=5)
        rows = {n["source"]: n for n in notes(gw, marker)}
        parse = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
        started = parse(rows["job"]["created_at"]) - parse(rows["request"]["created_at"])
        assert started.total_seconds() < 3.0, started
