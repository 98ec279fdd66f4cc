#!/usr/bin/env bash
#  mail_jobs.sh BUILD_DIR — throughput of the mailer and of the durable jobs
#  runtime, each beside a ceiling measured in the same run on this machine
#  (see bench/README.md, "Mail and jobs"):
#
#    (a)  mails/s: BENCH_MAIL_N mails queued at once through mail.send (mesh,
#         pipelined) to one tally-mailer, delivered over SMTP to an aiosmtpd
#         sink (tests/integration/smtp_sink.py); timed from the first send
#         until the sink holds them all.
#    (a') the sink's own ceiling: the same messages sent by Python smtplib
#         from another process, one connection per mail, one at a time.
#    (b)  jobs/s: BENCH_JOBS_N test.note jobs (enqueued by testsvc's
#         notes.enqueue for a far-off time, then made due at once by one
#         UPDATE + NOTIFY), claimed and completed by 1, then 2 tally-testsvc
#         instances; timed on the database's clock, from the first job done
#         to the last.
#    (b') plain `INSERT ...; UPDATE ...` pairs per second (pgbench, custom
#         script, prepared, 1 then 2 clients, BENCH_PG_SECONDS each) against
#         the same PostgreSQL, over the same unix socket.
#
#  Each case runs BENCH_ROUNDS rounds, interleaved ((b) and (b') alternate);
#  a row shows its best round and the range. Everything runs from a temp
#  folder on 127.0.0.1 and a private PostgreSQL, and is stopped on exit,
#  whatever happens. Bounded: every wait has a time limit.
#
#  Environment (defaults): BENCH_MAIL_N=300 BENCH_JOBS_N=2000 BENCH_ROUNDS=2
#  BENCH_PG_SECONDS=5 BENCH_WORKERS=2 (TALLY_WORKERS of every service)
#  BENCH_KEEP=1 keeps the temp folder (logs) for a look.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

MAIL_N=${BENCH_MAIL_N:-300}
JOBS_N=${BENCH_JOBS_N:-2000}
ROUNDS=${BENCH_ROUNDS:-2}
PG_SECONDS=${BENCH_PG_SECONDS:-5}
WORKERS=${BENCH_WORKERS:-2}

say () { printf 'mail_jobs: %s\n' "$*" >&2; }
die () { printf 'mail_jobs: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools ss
bench_pgbench

python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3) || die "python3 is missing"
"$python" -c 'import aiosmtpd, zmq, msgpack' 2>/dev/null \
    || die "$python needs aiosmtpd, pyzmq and msgpack (Debian: python3-aiosmtpd python3-zmq python3-msgpack)"
gateway_bin="$build/gateway/tally-gateway"
mailer_bin="$build/services/mailer/tally-mailer"
testsvc_bin="$build/tests/testsvc/tally-testsvc"
bench_built "$gateway_bin" "$mailer_bin" "$testsvc_bin"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
grep -q '^TALLY_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null \
    && say "warning: $build is a sanitizer build: figures will be far below a release build's"

bench_begin tally-mailbench
trap cleanup EXIT
trap 'exit 130' INT TERM

say "machine: $(nproc) CPU(s), $cpu_model; load average $load_before"

bench_pg
bench_gateway "$gateway_bin" TALLY_PROTO_EXTRA="$root/tests/proto/testsvc.json"

#  --- The driver: starts the sink, the mailer and testsvc instances (their
#  pids go to $tmp/pids), measures, writes $tmp/results.json ---------------
cat >"$tmp/driver.py" <<'PYEOF'
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ["ROOT"], "tests", "integration"))
from mesh_client import MeshClient
from smtp_sink import SmtpSink

env = os.environ
TMP, MESH, DB = env["TMP"], env["MESH"], env["DATABASE_URL"]
MAIL_N, JOBS_N = int(env["MAIL_N"]), int(env["JOBS_N"])
ROUNDS, PG_SECONDS, WORKERS = int(env["ROUNDS"]), int(env["PG_SECONDS"]), env["WORKERS"]
FAR = "2100-01-01T00:00:00Z"


def log(*args):
    print("mail_jobs:", *args, file=sys.stderr, flush=True)


def start(name, argv, extra):
    full = dict(os.environ, DATABASE_URL=DB, TALLY_MESH=MESH, TALLY_WORKERS=WORKERS,
                TALLY_INSTANCE=name, **extra)
    out = open(os.path.join(TMP, name + ".log"), "ab")
    proc = subprocess.Popen(argv, env=full, stdout=out, stderr=subprocess.STDOUT)
    with open(os.path.join(TMP, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")
    proc.name = name
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def sql(statement):
    out = subprocess.run(["psql", DB, "-XAtqc", statement], capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"psql: {out.stderr}")
    return out.stdout.strip()


def wait(predicate, what, timeout, procs=()):
    deadline = time.monotonic() + timeout
    while not predicate():
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"{p.name} died while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out ({timeout} s) waiting for {what}")
        time.sleep(0.02)


def live(client, service):
    for s in client.status().get("services", []):
        if s["name"] == service:
            return len(s["instances"])
    return 0


def pipeline(client, service, method, bodies, window=200, timeout_ms=60000):
    """Sends every request with at most `window` in flight; returns the
    replies' statuses and bodies in order."""
    replies, pending, nxt = [None] * len(bodies), {}, 0
    deadline = time.monotonic() + timeout_ms / 1000 + 5
    while nxt < len(bodies) or pending:
        while nxt < len(bodies) and len(pending) < window:
            req = client.request(service, method, body=bodies[nxt], timeout_ms=timeout_ms)
            pending[req["id"]] = nxt
            client.send(req)
            nxt += 1
        msg = client.receive(1000)
        if msg and msg.get("kind") == "reply" and msg.get("id") in pending:
            replies[pending.pop(msg["id"])] = (msg["status"], msg.get("body"))
        if time.monotonic() > deadline:
            raise SystemExit(f"{service}.{method}: replies missing after {timeout_ms} ms")
    return replies


client = MeshClient(MESH)
# mail.send is for services and the operator, not for anonymous peers
operator = MeshClient(MESH, peer="operator")
results = {"mail": [], "sink": [], "jobs": {"1": [], "2": []}, "pg": {"1": [], "2": []},
           "jobs_share": {}}

# --- (a) mail ---------------------------------------------------------------
sink = SmtpSink().start()
mailer = start("bench-mailer", [env["MAILER_BIN"]],
               {"TALLY_SMTP_URL": sink.url, "TALLY_MAIL_FROM": "Tally Bench <bench@tally.test>"})
wait(lambda: live(client, "mailer") == 1, "the mailer", 60, [mailer])
vars_ = {"username": "bench", "code": "123456", "link": "https://app.example/verify?t=x"}
for r in range(1, ROUNDS + 1):
    before = sink.count()
    bodies = [{"key": f"bench-{r}-{i}", "to": f"user{i}@example.com", "template": "verify_email",
               "vars": vars_} for i in range(MAIL_N)]
    t0 = time.time()
    replies = pipeline(operator, "mailer", "mail.send", bodies)
    t_queued = time.time()
    bad = [x for x in replies if x[0] != 202]
    if bad:
        raise SystemExit(f"mail.send answered {bad[0]}")
    wait(lambda: sink.count() >= before + MAIL_N, f"{MAIL_N} mails at the sink", 300, [mailer])
    t_end = max(m.at for m in sink.messages()[before:])
    rate = MAIL_N / (t_end - t0)
    results["mail"].append({"rate": rate, "queued_s": t_queued - t0, "total_s": t_end - t0})
    log(f"round {r} (a): {MAIL_N} mails in {t_end - t0:.2f} s = {rate:.0f} mails/s"
        f" (all {MAIL_N} queued after {t_queued - t0:.2f} s)")
    # (a') the sink alone, fed by smtplib from another process
    sample = sink.messages()[-1]
    with open(os.path.join(TMP, "sample.eml"), "wb") as f:
        f.write(sample.data)
    before = sink.count()
    code = ("import smtplib, sys, time\n"
            "data = open(sys.argv[1], 'rb').read()\n"
            "t0 = time.time()\n"
            "for i in range(int(sys.argv[3])):\n"
            "    s = smtplib.SMTP('127.0.0.1', int(sys.argv[2]), timeout=30)\n"
            "    s.sendmail('bench@tally.test', ['user%d@example.com' % i], data)\n"
            "    s.quit()\n"
            "print(time.time() - t0)\n")
    out = subprocess.run([sys.executable, "-c", code, os.path.join(TMP, "sample.eml"),
                          str(sink.port), str(MAIL_N)], capture_output=True, text=True,
                         timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"smtplib client: {out.stderr}")
    assert sink.count() == before + MAIL_N
    seconds = float(out.stdout)
    results["sink"].append({"rate": MAIL_N / seconds})
    log(f"round {r} (a'): the sink alone, {MAIL_N / seconds:.0f} mails/s")
undelivered = sql("SELECT count(*) FROM mailer.outbox WHERE status <> 'sent'")
stop(mailer)
sink.stop()
if undelivered != "0":
    raise SystemExit(f"{undelivered} outbox row(s) not sent")
results["mail_size"] = len(sample.data)

# --- (b) jobs, (b') PostgreSQL pairs ------------------------------------------
sql("CREATE TABLE IF NOT EXISTS public.bench_pairs (id bigserial PRIMARY KEY, v int,"
    " done_at timestamptz)")
with open(os.path.join(TMP, "pairs.sql"), "w") as f:
    f.write("INSERT INTO public.bench_pairs (v) VALUES (1) RETURNING id \\gset\n"
            "UPDATE public.bench_pairs SET done_at = now () WHERE id = :id;\n")


def pgbench(clients):
    out = subprocess.run([env["PGBENCH"], "-n", "-M", "prepared", "-c", str(clients),
                          "-j", str(clients), "-T", str(PG_SECONDS),
                          "-f", os.path.join(TMP, "pairs.sql"), DB],
                         capture_output=True, text=True, timeout=PG_SECONDS + 60)
    if out.returncode != 0:
        raise SystemExit(f"pgbench: {out.stderr}")
    for line in out.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise SystemExit(f"pgbench: no tps in {out.stdout}")


for k in (1, 2):
    instances = [start(f"bench-testsvc-{k}-{i}", [env["TESTSVC_BIN"]],
                       {"TALLY_PROTO_EXTRA": env["TESTSVC_PROTO"]}) for i in range(k)]
    wait(lambda: live(client, "testsvc") == k, f"{k} testsvc instance(s)", 60, instances)
    for r in range(1, ROUNDS + 1):
        tag = f"r{r}k{k}"
        replies = pipeline(client, "testsvc", "notes.enqueue",
                           [{"text": f"{tag}-{i}", "run_at": FAR} for i in range(JOBS_N)])
        bad = [x for x in replies if x[0] != 201]
        if bad:
            raise SystemExit(f"notes.enqueue answered {bad[0]}")
        first, last = sql("SELECT min(id), max(id) FROM testsvc.jobs"
                          f" WHERE kind = 'test.note' AND run_at >= '{FAR}'").split("|")
        span = f"id BETWEEN {first} AND {last}"
        count = sql(f"SELECT count(*) FROM testsvc.jobs WHERE {span}")
        if int(count) != JOBS_N:
            raise SystemExit(f"{count} jobs enqueued, not {JOBS_N}")
        t0 = time.time()
        sql(f"BEGIN; UPDATE testsvc.jobs SET run_at = now () WHERE {span};"
            " SELECT pg_notify ('tally_jobs.testsvc', ''); COMMIT;")
        wait(lambda: sql(f"SELECT count(*) FROM testsvc.jobs WHERE {span} AND done_at IS NULL")
             == "0", f"{JOBS_N} jobs done", 600, instances)
        t_end = time.time()
        n, seconds, attempts = sql(
            "SELECT count(*), extract (epoch FROM max (done_at) - min (done_at)), max (attempts)"
            f" FROM testsvc.jobs WHERE {span}").split("|")
        notes = sql(f"SELECT count(*) FROM testsvc.notes WHERE source = 'job' AND job_id"
                    f" BETWEEN {first} AND {last}")
        if notes != count or attempts != "1":
            raise SystemExit(f"{notes} notes for {count} jobs, max attempts {attempts}")
        rate = (int(n) - 1) / float(seconds)
        share = sql(f"SELECT string_agg (c::text, '/' ORDER BY c DESC) FROM (SELECT count(*) c"
                    f" FROM testsvc.jobs WHERE {span} GROUP BY locked_by) s")
        results["jobs"][str(k)].append({"rate": rate, "wall_rate": JOBS_N / (t_end - t0)})
        results["jobs_share"][str(k)] = share
        log(f"round {r} (b) {k} instance(s): {rate:.0f} jobs/s on the database's clock"
            f" ({JOBS_N / (t_end - t0):.0f}/s wall, from the UPDATE), per instance {share}")
        tps = pgbench(k)
        results["pg"][str(k)].append({"rate": tps})
        log(f"round {r} (b') {k} client(s): {tps:.0f} INSERT+UPDATE pairs/s")
    for p in instances:
        stop(p)

client.close()
operator.close()
with open(os.path.join(TMP, "results.json"), "w") as f:
    json.dump(results, f)
PYEOF

ROOT="$root" TMP="$tmp" MESH="$mesh" DATABASE_URL="$database_url" MAIL_N="$MAIL_N" \
JOBS_N="$JOBS_N" ROUNDS="$ROUNDS" PG_SECONDS="$PG_SECONDS" WORKERS="$WORKERS" \
MAILER_BIN="$mailer_bin" TESTSVC_BIN="$testsvc_bin" PGBENCH="$pgbench" \
    TESTSVC_PROTO="$root/tests/proto/testsvc.json" \
    timeout 1200 "$python" "$tmp/driver.py" &
pids+=("$!")
wait "${pids[-1]}" || die "the driver failed (logs in $tmp with BENCH_KEEP=1)"
unset 'pids[-1]'

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))
"$python" - "$tmp/results.json" <<PYEOF
import json, sys
r = json.load(open(sys.argv[1]))
def best(rows): return max(x["rate"] for x in rows)
def span(rows): return f"{min(x['rate'] for x in rows):.0f}–{max(x['rate'] for x in rows):.0f}"
print("## Mail and jobs bench — $(date -u '+%Y-%m-%d %H:%M UTC')")
print()
print("Machine: $(nproc) CPU(s), $cpu_model; load average before $load_before, after $load_after.")
print("Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
      "$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')"
      ", build $build (${build_type:-no build type}); TALLY_WORKERS=$WORKERS; $ROUNDS rounds, best shown.")
print()
print("| case | per second (best) | range | ratio |")
print("|---|---:|---:|---:|")
a, a2 = best(r["mail"]), best(r["sink"])
print(f"| (a) mails: $MAIL_N × mail.send (template, {r['mail_size']} B) → 1 mailer → SMTP sink | {a:.0f} | {span(r['mail'])} | {a / a2:.2f} of (a') |")
print(f"| (a') the sink alone: smtplib, 1 connection per mail, sequential | {a2:.0f} | {span(r['sink'])} | 1.00 |")
for k in ("1", "2"):
    j, p = best(r["jobs"][k]), best(r["pg"][k])
    print(f"| (b) jobs claimed + completed, {k} testsvc instance(s) ($JOBS_N test.note; per instance {r['jobs_share'][k]}) | {j:.0f} | {span(r['jobs'][k])} | {j / p:.2f} of (b') |")
    print(f"| (b') PostgreSQL INSERT; UPDATE pairs, {k} client(s) (pgbench) | {p:.0f} | {span(r['pg'][k])} | 1.00 |")
print()
q = [x["queued_s"] for x in r["mail"]]
print(f"(a) all $MAIL_N mail.send answered 202 after {min(q):.2f}–{max(q):.2f} s; "
      f"(b) from the UPDATE to the last job done (wall): "
      + ", ".join(f"{k}: {max(x['wall_rate'] for x in r['jobs'][k]):.0f}/s" for k in ("1", "2")) + ".")
print()
print("Run took ${elapsed}s.")
PYEOF
