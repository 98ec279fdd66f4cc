"""Who is calling (proto/PROTOCOL.md §1, §2 `caller`, §7 `callers`): every
peer is someone, bound to its CURVE key (a service, the operator, a
gateway); a caller is derived by the gateway, never claimed; each service's
runtime refuses, before the handler runs, any caller its declaration does
not name; and a service whose handlers and declaration disagree does not
start."""

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import requests

from mesh_client import MeshClient
from tally import (TEST_PROTO, binary, free_port, metric, token, unique, wait_for,
                   wait_instances)


#  An auth.user.deleted event about no one, as auth delivers it
DELETED = {"id": 1, "event": "auth.user.deleted", "subject": "nobody-at-all",
           "body": {"user_id": "nobody-at-all"}}


# ---------------------------------------------------------------------------
# Keys

class Keys:
    """A folder of certificates (tallyctl keygen NAME --peer ID); the
    gateway's allow folder holds the public ones of the peers it admits."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tally-keys-")
        self.allow = os.path.join(self.dir, "allow")
        os.mkdir(self.allow)
        self.gateway = self.make("gateway", "gateway", allow=False)

    def make(self, name, peer, allow=True):
        out = subprocess.run([binary("tallyctl"), "keygen", name, self.dir, "--peer", peer],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        path = os.path.join(self.dir, name)
        if allow:
            shutil.copy(path, self.allow)
        return path

    def gateway_env(self):
        return {"TALLY_CURVE_SERVER_CERT": self.gateway + "_secret",
                "TALLY_CURVE_ALLOW_DIR": self.allow}

    def peer_env(self, cert):
        return {"TALLY_CURVE_CLIENT_CERT": cert + "_secret",
                "TALLY_CURVE_SERVER_PUBLIC": self.gateway}

    @staticmethod
    def z85(path, field):
        with open(path) as f:
            return re.search(rf'{field}\s*=\s*"([^"]+)"', f.read()).group(1)

    def curve(self, cert):
        """(public, secret, server public) for a Python peer."""
        return (self.z85(cert, "public-key"), self.z85(cert + "_secret", "secret-key"),
                self.z85(self.gateway, "public-key"))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def keys():
    k = Keys()
    yield k
    k.close()


def test_tallyctl_keygen_refuses_an_unknown_identity(keys):
    out = subprocess.run([binary("tallyctl"), "keygen", "x", keys.dir, "--peer", "root"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "--peer" in out.stderr


# ---------------------------------------------------------------------------
# With CURVE: the key decides

def test_a_key_announces_only_the_service_it_allows(cluster, keys):
    testsvc = keys.make("testsvc", "service:testsvc")
    auth = keys.make("auth", "service:auth")
    gw = cluster.gateway(env=keys.gateway_env())
    assert metric(gw, "tally_mesh_refused_total") == 0
    # testsvc's key announcing auth: refused, logged, counted; never an instance
    cluster.service([gw], role="auth", workers=1, name="impostor", env=keys.peer_env(testsvc))
    wait_for(lambda: metric(gw, "tally_mesh_refused_total") >= 1, "the refusal", timeout=10)
    wait_for(lambda: "refused as auth" in gw.output(), "the refusal logged", timeout=5)
    assert metric(gw, "tally_mesh_instances", {"service": "auth"}) in (None, 0)
    r = requests.get(gw.url + "/api/v1/test/whoami", headers=token("eve"), timeout=10)
    assert r.status_code == 503                 # no auth to check the session
    # The same program with auth's key is auth
    cluster.service([gw], role="auth", workers=1, name="auth", env=keys.peer_env(auth))
    cluster.service([gw], workers=1, name="svc", env=keys.peer_env(testsvc))
    wait_instances(gw, 1, service="auth")
    wait_instances(gw, 1)
    r = requests.get(gw.url + "/api/v1/test/whoami", headers=token("eve"), timeout=10)
    assert r.status_code == 200 and r.json()["caller"] == "user"


def test_a_slot_joins_only_an_instance_of_the_service_its_key_allows(cluster, keys):
    # PROTOCOL.md §3 "Slots": a slot's ready is checked against its key
    # as a link's is, and joins only an instance of the service announced.
    testsvc = keys.make("testsvc", "service:testsvc")
    auth = keys.make("auth", "service:auth")
    operator = keys.make("operator", "operator")
    gw = cluster.gateway(env=keys.gateway_env())
    cluster.service([gw], role="auth", workers=1, name="authinst", env=keys.peer_env(auth))
    wait_instances(gw, 1, service="auth")
    before = metric(gw, "tally_mesh_refused_total")
    slot0 = {"v": 1, "kind": "ready", "instance": "authinst", "capacity": 1, "slot": 0}
    with MeshClient(gw.mesh, curve=keys.curve(testsvc)) as rogue:
        # testsvc's key as a slot of auth's instance: refused, counted, logged
        rogue.send({**slot0, "service": "auth"})
        got = rogue.receive(3000)
        assert got and got["kind"] == "disconnect", got
        wait_for(lambda: metric(gw, "tally_mesh_refused_total") == before + 1, "the refusal")
        assert "refused as auth" in gw.output()
        # its own service, the other's instance name: no such instance of testsvc
        rogue.send({**slot0, "service": "testsvc"})
        got = rogue.receive(3000)
        assert got and got["kind"] == "disconnect", got
        with MeshClient(gw.mesh, curve=keys.curve(operator)) as op:
            services = {s["name"]: s for s in op.status()["services"]}
        [inst] = services["auth"]["instances"]
        assert inst["instance"] == "authinst" and inst["slots"] == 1
        # The rogue got no work: auth's own slot checks the sessions, and
        # what the rogue asks auth is asked as service:testsvc
        cluster.service([gw], workers=1, name="svc", env=keys.peer_env(testsvc))
        wait_instances(gw, 1)
        r = requests.get(gw.url + "/api/v1/test/whoami", headers=token("eve"), timeout=10)
        assert r.status_code == 200 and r.json()["caller"] == "user"
        rogue.send(rogue.request("auth", "session.check", body={"token": "test-token-x"}))
        reply = rogue.receive(5000)
        while reply and reply["kind"] != "reply":
            assert reply["kind"] != "request", reply
            reply = rogue.receive(5000)
        assert reply and reply["status"] == 403, reply
    assert metric(gw, "tally_mesh_refused_total") == before + 1


def test_the_caller_of_a_mesh_request_is_its_key_not_its_claim(cluster, keys):
    testsvc = keys.make("testsvc", "service:testsvc")
    operator = keys.make("operator", "operator")
    tracker = keys.make("tracker", "service:tracker")
    gw = cluster.gateway(env=keys.gateway_env())
    cluster.service([gw], workers=1, env=keys.peer_env(testsvc))
    wait_instances(gw, 1)
    # The operator's key, claiming to be auth: the operator
    with MeshClient(gw.mesh, peer="service:auth", curve=keys.curve(operator)) as op:
        reply = op.call("testsvc", "whoami.mesh")
        assert reply["status"] == 200 and reply["body"]["caller"] == "operator"
        assert op.call("testsvc", "jobs.list")["status"] == 200
        # events.deliver is for services only
        reply = op.call("testsvc", "events.deliver", body=DELETED)
        assert reply["status"] == 403, reply
    # A service's key, claiming to be the operator: that service
    with MeshClient(gw.mesh, peer="operator", curve=keys.curve(tracker)) as svc:
        reply = svc.call("testsvc", "whoami.mesh")
        assert reply["status"] == 200 and reply["body"]["caller"] == "service:tracker"
        reply = svc.call("testsvc", "jobs.list")
        assert reply["status"] == 403 and reply["body"]["error"]["code"] == "forbidden"


def test_tallyctl_runs_jobs_with_the_operator_key_only(cluster, keys):
    testsvc = keys.make("testsvc", "service:testsvc")
    operator = keys.make("operator", "operator")
    gw = cluster.gateway(env=keys.gateway_env())
    cluster.service([gw], workers=1, env=keys.peer_env(testsvc))
    wait_instances(gw, 1)

    def tallyctl(cert):
        env = dict(os.environ, TALLY_MESH=gw.mesh, **keys.peer_env(cert))
        return subprocess.run([binary("tallyctl"), "jobs", "list", "testsvc"],
                              capture_output=True, text=True, timeout=60, env=env)
    assert tallyctl(operator).returncode == 0
    out = tallyctl(testsvc)             # tallyctl claims operator; the key says otherwise
    assert out.returncode != 0 and "403" in out.stdout + out.stderr


# ---------------------------------------------------------------------------
# On a loopback mesh without keys: claims, checked against declarations

def test_on_loopback_peers_claim_and_declarations_decide(cluster):
    gw = cluster.gateway()
    cluster.service([gw], workers=1)
    wait_instances(gw, 1)
    with MeshClient(gw.mesh) as nobody, \
            MeshClient(gw.mesh, peer="operator") as op, \
            MeshClient(gw.mesh, peer="service:tracker") as tracker, \
            MeshClient(gw.mesh, peer="service:auth") as auth:
        assert nobody.call("testsvc", "whoami.mesh")["body"]["caller"] == "anonymous"
        assert op.call("testsvc", "whoami.mesh")["body"]["caller"] == "operator"
        assert tracker.call("testsvc", "whoami.mesh")["body"]["caller"] == "service:tracker"
        # jobs.* are the operator's; auth's events are auth's; whoami is users'
        assert op.call("testsvc", "jobs.list")["status"] == 200
        for client in (nobody, tracker, auth):
            assert client.call("testsvc", "jobs.list")["status"] == 403
        for client in (nobody, op, tracker):
            assert client.call("testsvc", "events.deliver", body=DELETED)["status"] == 403
        assert auth.call("testsvc", "events.deliver", body=DELETED)["status"] == 200
        for client in (nobody, op, tracker, auth):
            assert client.call("testsvc", "whoami")["status"] == 403


def test_the_refusal_comes_before_the_handler(cluster):
    # items.delete is a user's: a service deleting a user's item is refused
    # and the item stays
    gw = cluster.gateway()
    cluster.service([gw], role="auth", workers=1)
    cluster.service([gw], workers=1)
    wait_instances(gw, 1)
    wait_instances(gw, 1, service="auth")
    r = requests.post(gw.url + "/api/v1/test/items", json={"name": unique("kept")},
                      headers=token("ruth"), timeout=10)
    assert r.status_code == 201, r.text
    item = r.json()["id"]
    with MeshClient(gw.mesh, peer="service:tracker") as tracker:
        reply = tracker.call("testsvc", "items.delete", params={"id": item})
        assert reply["status"] == 403
    r = requests.get(gw.url + f"/api/v1/test/items/{item}", headers=token("ruth"), timeout=10)
    assert r.status_code == 200


def test_a_gateway_off_loopback_needs_keys_or_an_explicit_insecure_flag(cluster):
    bind = f"tcp://0.0.0.0:{free_port()}"
    proc = cluster.gateway_process(env={"TALLY_MESH_BIND": bind})
    assert proc.popen.wait(30) != 0
    assert "is not loopback" in proc.output()
    gw = cluster.gateway(env={"TALLY_MESH_BIND": f"tcp://0.0.0.0:{free_port()}",
                              "TALLY_MESH_INSECURE": "1"})
    assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
    assert "TALLY_MESH_INSECURE=1" in gw.output()


# ---------------------------------------------------------------------------
# Declarations and handlers agree, or the service does not start

def _declaration_without(method, extra=None):
    with open(TEST_PROTO) as f:
        decl = json.load(f)
    decl["methods"] = [m for m in decl["methods"] if m["name"] != method]
    decl["methods"] += extra or []
    path = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(decl, path)
    path.close()
    return path.name


@pytest.mark.parametrize("missing,extra,says", [
    ("notes.list", None, "method notes.list has a handler but no declaration"),
    (None, [{"name": "ghost", "callers": ["operator"]}], "method ghost is declared but has no handler"),
])
def test_a_service_whose_declaration_and_handlers_disagree_does_not_start(cluster, missing,
                                                                          extra, says):
    gw = cluster.gateway()
    path = _declaration_without(missing, extra)
    try:
        proc = cluster.service([gw], workers=1, env={"TALLY_PROTO_EXTRA": path})
        assert proc.popen.wait(60) != 0
        assert says in proc.output()
    finally:
        os.unlink(path)
