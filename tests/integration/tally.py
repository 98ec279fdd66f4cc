"""Test harness: starts real Tally processes (gateways, services) over real
sockets against the test run's PostgreSQL, and stops them checking that they
exit cleanly (an ASan/LSan report makes the exit code non-zero)."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TALLY_BUILD_DIR", os.path.join(ROOT, "build-asan"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
TEST_PROTO = os.path.join(ROOT, "tests", "proto", "testsvc.json")
AUTH_STANDIN_PROTO = os.path.join(ROOT, "tests", "proto", "auth-standin.json")


_HANDED_OUT = set()     # ports free_port gave: a port is given once a run


def free_port():
    """A port nothing listens on now, never one this run was given before:
    the kernel may offer a port it just offered again (once its socket is
    closed), and two ports asked for one process (its HTTP, mesh and ops
    addresses) must differ."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port that was not given before")


def binary(name):
    for sub in ("gateway", "tests/testsvc", "deploy"):
        path = os.path.join(BUILD, sub, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(name)


class Process:
    """One running program, its log in a file."""

    def __init__(self, name, argv, env, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.log = open(self.log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env)
        self.popen = subprocess.Popen(argv, env=full_env, stdout=self.log,
                                      stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout=40):
        """SIGTERM, wait, and return the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            rc = self.popen.wait()
            rc = f"timeout ({rc})"
        self.log.close()
        return rc

    def kill9(self):
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self.log.close()

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Cluster:
    """Gateways and service instances for one test; `stop()` checks that
    every process still running exits 0 on SIGTERM."""

    def __init__(self, logdir=None):
        self.logdir = logdir or tempfile.mkdtemp(prefix="tally-test-")
        self.processes = []
        self.gateways = []   # (http_url, mesh_endpoint)
        self.counter = 0

    def gateway(self, env=None, name=None):
        """A gateway on fresh ports (see gateway_at)."""
        return gateway_at(self, free_port(), free_port(), env=env, name=name)

    def gateway_process(self, env=None, name=None):
        """A gateway started on fresh ports, not waited for (it may refuse
        to start)."""
        return gateway_at(self, free_port(), free_port(), env=env, name=name, wait=False)

    def service(self, gateways, role=None, workers=2, env=None, name=None):
        self.counter += 1
        name = name or f"{role or 'testsvc'}{self.counter}"
        base = {
            "DATABASE_URL": DATABASE_URL,
            "TALLY_MESH": ",".join(g.mesh for g in gateways),
            "TALLY_WORKERS": str(workers),
            "TALLY_INSTANCE": name,
            # its declaration: the test service's, or the stand-in auth's
            "TALLY_PROTO_EXTRA": AUTH_STANDIN_PROTO if role == "auth" else TEST_PROTO,
        }
        if role:
            base["TALLY_TEST_ROLE"] = role
        base.update(env or {})
        proc = Process(name, [binary("tally-testsvc")], base, self.logdir)
        self.processes.append(proc)
        return proc

    def stop(self):
        failures = []
        # Services first, so that gateways see them leave.
        for proc in sorted(self.processes, key=lambda p: p.name.startswith("gateway")):
            if proc.popen.returncode is not None and not proc.alive():
                continue
            rc = proc.stop()
            if rc != 0:
                failures.append(f"{proc.name} exited {rc}:\n{proc.output()[-3000:]}")
        return failures


def _get_ok(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def wait_for(predicate, what, timeout=20, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} died while waiting for {what}:\n{proc.output()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def instances(gateway, service="testsvc"):
    """Live instances of `service` as the gateway's /metrics reports them."""
    text = requests.get(gateway.ops_url + "/metrics", timeout=2).text
    m = re.search(r'^tally_mesh_instances\{service="%s"\} (\d+)$' % re.escape(service), text, re.M)
    return int(m.group(1)) if m else 0


def wait_instances(gateway, count, service="testsvc", timeout=20):
    wait_for(lambda: instances(gateway, service) == count,
             f"{count} instance(s) of {service} on {gateway.name}", timeout)


def token(user):
    """A token the stand-in auth service accepts for `user`."""
    return {"Authorization": f"Bearer test-token-{user}"}


def unique(prefix="u"):
    return f"{prefix}{os.getpid()}x{time.time_ns()}"


# ---------------------------------------------------------------------------
# Helpers added for the integration suite (nothing above depends on them).

def gateway_at(cluster, http_port, mesh_port, env=None, name=None, wait=True):
    """Starts a gateway on given ports (also to restart one where it was);
    its ops port (/metrics) is a fresh one, in `ops_url`."""
    cluster.counter += 1
    name = name or f"gateway{cluster.counter}"
    ops_port = free_port()
    base = {
        "TALLY_HTTP_ADDR": f"127.0.0.1:{http_port}",
        "TALLY_OPS_ADDR": f"127.0.0.1:{ops_port}",
        "TALLY_MESH_BIND": f"tcp://127.0.0.1:{mesh_port}",
        "TALLY_GATEWAY_NAME": name,
        "TALLY_PROTO_EXTRA": TEST_PROTO,
        "TALLY_PROTO_BUILTIN": "0",     # the platform alone, no product services
        "TALLY_CORS_ORIGINS": "https://app.example",
    }
    base.update(env or {})
    proc = Process(name, [binary("tally-gateway")], base, cluster.logdir)
    proc.url = f"http://127.0.0.1:{http_port}"
    proc.ops_url = f"http://127.0.0.1:{ops_port}"
    proc.mesh = f"tcp://127.0.0.1:{mesh_port}"
    proc.http_port, proc.mesh_port = http_port, mesh_port
    cluster.processes.append(proc)
    if wait:
        wait_for(lambda: _get_ok(proc.url + "/healthz"), f"{name} up", timeout=30, proc=proc)
    return proc


def ports_of(gateway):
    """(http_port, mesh_port) of a gateway started by Cluster.gateway."""
    return int(gateway.url.rsplit(":", 1)[1]), int(gateway.mesh.rsplit(":", 1)[1])


def metric(gateway, name, labels=None):
    """The value of one sample in the gateway's /metrics (ops port), or None."""
    text = requests.get(gateway.ops_url + "/metrics", timeout=5).text
    return parse_metric(text, name, labels)


def parse_metric(text, name, labels=None):
    want = dict(labels or {})
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in want.items()):
            return float(m.group(4))
    return None


def raw_http(url, request_bytes, timeout=10):
    """Sends bytes as they are to the gateway of `url` and reads one response
    (until the server closes or Content-Length is satisfied). Returns
    (status, headers with lower-case names, body), status None when the
    server closed without answering."""
    host, port = url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            s.sendall(request_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                head, sep, rest = data.partition(b"\r\n\r\n")
                if sep:
                    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    if length and len(rest) >= int(length.group(1)):
                        break
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def psql(sql):
    """Runs one SQL statement against the test database; returns stdout."""
    out = subprocess.run(["psql", DATABASE_URL, "-XAtc", sql], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# ---------------------------------------------------------------------------
# The product services (services/<name>/tally-<name>), started like
# `Cluster.service` starts tally-testsvc, each with its own settings.

def service_binary(service):
    path = os.path.join(BUILD, "services", service, f"tally-{service}")
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    return path


def mailer_binary():
    return service_binary("mailer")


def program(cluster, service, gateways, env=None, name=None, workers=2, database_url=None,
            blank=()):
    """Starts tally-<service> serving `gateways` (a list, or one gateway).
    `env` adds or overrides anything; the variables named in `blank` are
    emptied unless `env` sets them, so that the test run's own environment
    never leaks in by accident."""
    if not isinstance(gateways, (list, tuple)):
        gateways = [gateways]
    cluster.counter += 1
    name = name or f"{service}{cluster.counter}"
    base = {k: "" for k in blank}
    base.update({
        "DATABASE_URL": database_url or DATABASE_URL,
        "TALLY_MESH": ",".join(g.mesh for g in gateways),
        "TALLY_WORKERS": str(workers),
        "TALLY_INSTANCE": name,
    })
    base.update(env or {})
    proc = Process(name, [service_binary(service)], base, cluster.logdir)
    cluster.processes.append(proc)
    return proc


def mailer(cluster, gateways, smtp_url=None, data_dir=None, env=None, name=None,
           workers=2, database_url=None):
    """Starts tally-mailer serving `gateways`. TALLY_SMTP_URL is set only
    when `smtp_url` is given (without it mail goes to $TALLY_DATA_DIR/mail);
    TALLY_DATA_DIR only when `data_dir` is given. `env` adds or overrides
    anything (TALLY_MAIL_FROM, TALLY_WEBHOOK_ALLOW_PRIVATE, ...)."""
    settings = {}
    if smtp_url:
        settings["TALLY_SMTP_URL"] = smtp_url
    if data_dir:
        settings["TALLY_DATA_DIR"] = data_dir
    settings.update(env or {})
    return program(cluster, "mailer", gateways, env=settings, name=name, workers=workers,
                   database_url=database_url,
                   blank=("TALLY_SMTP_URL", "TALLY_DATA_DIR", "TALLY_MAIL_FROM",
                          "TALLY_WEBHOOK_ALLOW_PRIVATE"))


def auth(cluster, gateways, env=None, name=None, workers=4):
    """Starts tally-auth. By default users are verified by mail, links
    point at http://tally.test, and auth also reads the test service's
    declaration, so that its auth.user.deleted events reach testsvc (the
    data-holding service of the platform tests) beside the built-in
    subscribers."""
    settings = {
        "TALLY_PUBLIC_URL": "http://tally.test",
        "TALLY_REQUIRE_VERIFICATION": "true",
        "TALLY_PROTO_EXTRA": TEST_PROTO,
    }
    settings.update(env or {})
    return program(cluster, "auth", gateways, env=settings, name=name, workers=workers,
                   blank=("TALLY_ARGON2_OPSLIMIT", "TALLY_ARGON2_MEMLIMIT",
                          "TALLY_AUTH_MAX_HASHES"))


def tracker(cluster, gateways, env=None, name=None, workers=4):
    """Starts tally-tracker."""
    return program(cluster, "tracker", gateways, env=env, name=name, workers=workers)


def event(cluster, gateways, env=None, name=None, workers=4):
    """Starts tally-event."""
    return program(cluster, "event", gateways, env=env, name=name, workers=workers)


def notification(cluster, gateways, env=None, name=None, workers=2):
    """Starts tally-notification."""
    return program(cluster, "notification", gateways, env=env, name=name, workers=workers)


def analytics(cluster, gateways, env=None, name=None, workers=4):
    """Starts tally-analytics."""
    return program(cluster, "analytics", gateways, env=env, name=name, workers=workers)


def upload(cluster, gateways, data_dir=None, s3=None, env=None, name=None, workers=4):
    """Starts tally-upload: its store is the folder `data_dir`
    (TALLY_DATA_DIR), or the S3-compatible store `s3` (a dict of
    TALLY_S3_URL, TALLY_S3_ACCESS_KEY, TALLY_S3_SECRET_KEY, TALLY_S3_REGION)."""
    settings = dict(s3 or {})
    if data_dir:
        settings["TALLY_DATA_DIR"] = str(data_dir)
    settings.update(env or {})
    return program(cluster, "upload", gateways, env=settings, name=name, workers=workers,
                   blank=("TALLY_S3_URL", "TALLY_S3_ACCESS_KEY", "TALLY_S3_SECRET_KEY",
                          "TALLY_S3_REGION", "TALLY_DATA_DIR", "TALLY_UPLOAD_QUOTA_BYTES",
                          "TALLY_UPLOAD_PER_HOUR", "TALLY_PUBLIC_URL"))
