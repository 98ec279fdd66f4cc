"""The upload service on an S3-compatible store: s3rver (npm, pinned by
deploy/bootstrap.sh test into .tools). s3rver accepts any signature, so
the instances reach it through s3_sigv4.SigV4Proxy, which verifies every
request's AWS Signature V4 with the credentials given to the instances
and refuses a bad one. Two gateways and two upload instances share the
store: what one instance stored, the other serves."""

import hashlib
import os
import shutil
import subprocess
import tempfile

import pytest
import requests

import images
import tally
from event_system import EventSystem
from s3_sigv4 import SigV4Proxy
from tally import free_port, wait_for, wait_instances

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S3RVER = os.path.join(ROOT, ".tools", "node_modules", ".bin", "s3rver")


class S3rver:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tally-s3rver-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "s3rver.log"), "w")
        self.proc = subprocess.Popen(
            [S3RVER, "-d", os.path.join(self.dir, "data"), "-a", "127.0.0.1",
             "-p", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._up, "s3rver to listen", timeout=30)

    def _up(self):
        try:
            requests.get(self.url, timeout=1)
            return True
        except requests.RequestException:
            return False

    def objects(self, bucket):
        """The keys s3rver holds in `bucket`, from its own folder."""
        root = os.path.join(self.dir, "data", bucket)
        found = set()
        for _, _, files in os.walk(root):
            for name in files:
                if name.endswith("._S3rver_object"):
                    found.add(name[: -len("._S3rver_object")])
        return found

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def s3():
    if not os.path.exists(S3RVER):
        pytest.fail("s3rver is not installed: run deploy/bootstrap.sh test")
    server = S3rver()
    server.proxy = SigV4Proxy(server.url, "tally-key", "tally-secret").start()
    yield server
    server.proxy.stop()
    server.stop()


@pytest.fixture(scope="module")
def up(s3):
    cluster = tally.Cluster()
    try:
        system = EventSystem(cluster)
        gws = [system.gw, system.gw2]
        store = {"TALLY_S3_URL": s3.proxy.url + "/tally-uploads",
                 "TALLY_S3_ACCESS_KEY": "tally-key", "TALLY_S3_SECRET_KEY": "tally-secret",
                 "TALLY_S3_REGION": "us-east-1"}
        # Each instance talks to one gateway only: a request through gw2
        # is served by the other instance.
        tally.upload(cluster, [system.gw], s3=store, name="upload-a")
        tally.upload(cluster, [system.gw2], s3=store, name="upload-b")
        wait_instances(system.gw, 1, service="upload", timeout=60)
        wait_instances(system.gw2, 1, service="upload", timeout=60)
    except BaseException:
        cluster.stop()
        raise
    yield system
    failures = cluster.stop()
    system.stop()
    assert not failures, "\n".join(failures)


def fetch(up, url, gw):
    return requests.get(gw.url + "/api/v1" + url.split("/api/v1", 1)[1], timeout=60)


def test_two_instances_share_the_s3_store(up, s3):
    user = up.user()
    data = images.encode("jpeg", 640, 480, noise=True)
    r = up.post(user, "/uploads", data=data, headers={"Content-Type": "image/jpeg"},
                gw=up.gw)
    assert r.status_code == 201, r.text
    body = r.json()
    sha = body["sha256"]
    assert sha in s3.objects("tally-uploads")
    # stored through one instance, served by the other
    got = fetch(up, body["url"], up.gw2)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert images.dimensions(got.content) == (640, 480)
    part = requests.get(up.gw2.url + "/api/v1" + body["url"].split("/api/v1", 1)[1],
                        headers={"Range": "bytes=2-5"}, timeout=30)
    assert part.status_code == 206 and part.content == got.content[2:6]
    # a variant made by one instance is kept in the store and served by both
    thumb = fetch(up, body["variants"]["thumb"], up.gw2)
    assert thumb.status_code == 200 and images.dimensions(thumb.content) == (200, 150)
    assert sha + ".thumb" in s3.objects("tally-uploads")
    assert fetch(up, body["variants"]["thumb"], up.gw).content == thumb.content
    # the same bytes from another user, through the other gateway: one object
    other = up.user()
    again = up.post(other, "/uploads", data=data, headers={"Content-Type": "image/jpeg"},
                    gw=up.gw2)
    assert again.status_code == 201 and again.json()["sha256"] == sha
    # deleting both uploads removes the objects
    assert up.delete(user, f"/uploads/{body['id']}", gw=up.gw2).status_code == 204
    assert sha in s3.objects("tally-uploads")
    assert up.delete(other, f"/uploads/{again.json()['id']}").status_code == 204
    assert not {k for k in s3.objects("tally-uploads") if k.startswith(sha)}
    assert fetch(up, body["url"], up.gw).status_code == 404
    # every request the instances sent was signed right (bucket creation,
    # PUT, GET, DELETE)
    assert s3.proxy.verified >= 8 and s3.proxy.refused == []


def test_the_proxy_refuses_a_wrong_signature(s3):
    # what makes the test above mean something: a request signed with
    # another secret (libcurl's signer, as the service's) is refused
    r = requests.put(s3.proxy.url + "/tally-uploads/x", data=b"hello",
                     headers={"x-amz-content-sha256": hashlib.sha256(b"hello").hexdigest()},
                     auth=None, timeout=10)
    assert r.status_code == 403
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4",
         "aws:amz:us-east-1:s3", "-u", "tally-key:another-secret", "-X", "PUT",
         "--data-binary", "hello", "-H",
         "x-amz-content-sha256: " + hashlib.sha256(b"hello").hexdigest(),
         s3.proxy.url + "/tally-uploads/x"], capture_output=True, text=True, timeout=10)
    assert out.stdout == "403"
    good = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4",
         "aws:amz:us-east-1:s3", "-u", "tally-key:tally-secret", "-X", "PUT",
         "--data-binary", "hello", "-H",
         "x-amz-content-sha256: " + hashlib.sha256(b"hello").hexdigest(),
         s3.proxy.url + "/tally-uploads/x"], capture_output=True, text=True, timeout=10)
    assert good.stdout == "200"
