"""CURVE on the mesh: a gateway with a server certificate accepts only
peers whose public certificate is in its allow folder."""

import os
import shutil
import subprocess
import tempfile
import time

import requests

from mesh_client import MeshClient
from tally import binary, instances, wait_for, wait_instances


def keygen(name, folder, peer=None):
    out = subprocess.run([binary("tallyctl"), "keygen", name, folder]
                         + (["--peer", peer] if peer else []),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert os.path.exists(os.path.join(folder, name))
    assert os.path.exists(os.path.join(folder, name + "_secret"))
    return os.path.join(folder, name)


def test_curve_admits_only_allowed_peers(cluster):
    keys = tempfile.mkdtemp(prefix="tally-curve-")
    allow = os.path.join(keys, "allow")
    os.mkdir(allow)
    gw_cert = keygen("gateway", keys, "gateway")
    svc_cert = keygen("service", keys, "service:testsvc")
    stranger_cert = keygen("stranger", keys, "service:testsvc")
    shutil.copy(svc_cert, allow)                 # only the service's public cert

    gw = cluster.gateway(env={"TALLY_CURVE_SERVER_CERT": gw_cert + "_secret",
                              "TALLY_CURVE_ALLOW_DIR": allow})
    # Without keys, and with keys the gateway does not know: never registered.
    cluster.service([gw], workers=1, name="keyless")
    cluster.service([gw], workers=1, name="stranger",
                    env={"TALLY_CURVE_CLIENT_CERT": stranger_cert + "_secret",
                         "TALLY_CURVE_SERVER_PUBLIC": gw_cert})
    with MeshClient(gw.mesh) as plain:
        plain.send(plain.request("mesh", "ping", timeout_ms=1000))
        assert plain.receive(1500) is None, "a peer without keys got an answer"
    time.sleep(2.5)         # the instances have had time to announce themselves
    assert instances(gw) == 0
    r = requests.get(gw.url + "/readyz", timeout=5)
    assert r.status_code == 503
    assert {"service": "testsvc", "reason": "no live instance"} in r.json()["missing"]

    # With the allowed certificate: registers and serves.
    cluster.service([gw], workers=1, name="trusted",
                    env={"TALLY_CURVE_CLIENT_CERT": svc_cert + "_secret",
                         "TALLY_CURVE_SERVER_PUBLIC": gw_cert})
    wait_instances(gw, 1)
    r = requests.get(gw.url + "/api/v1/test/echo", timeout=5)
    assert r.status_code == 200
    assert r.json()["instance"] == "trusted"
    wait_for(lambda: requests.get(gw.url + "/readyz", timeout=5).status_code == 200, "readyz 200")
    assert instances(gw) == 1
    shutil.rmtree(keys)
