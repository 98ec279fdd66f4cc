"""Ops endpoints of the gateway: liveness, readiness (on the public port and
the ops port), Prometheus metrics (on the ops port only)."""

import random
import re
import string

import requests

from tally import parse_metric, raw_http, wait_for, wait_instances


def test_healthz_and_livez_answer_200(system):
    for path in ("/healthz", "/livez"):
        r = requests.get(system.gw.url + path, timeout=5)
        assert r.status_code == 200, path
        assert r.json() == {"status": "ok"}


def test_metrics_are_404_on_the_public_port_and_served_on_the_ops_port(system):
    r = requests.get(system.gw.url + "/metrics", timeout=5)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert "tally_mesh" not in r.text
    assert requests.get(system.gw.ops_url + "/metrics", timeout=5).status_code == 200


def test_ops_port_answers_the_probes_and_nothing_of_the_api(system):
    for path in ("/healthz", "/livez", "/readyz"):
        ops = requests.get(system.gw.ops_url + path, timeout=5)
        public = requests.get(system.gw.url + path, timeout=5)
        assert ops.status_code == public.status_code == 200, path
        assert ops.json()["status"] == public.json()["status"], path
    r = requests.get(system.gw.ops_url + "/api/v1/test/echo", timeout=5)
    assert r.status_code == 404


def test_readyz_lists_a_missing_service_then_is_ready_once_instances_are_up(cluster):
    gw = cluster.gateway()
    r = requests.get(gw.url + "/readyz", timeout=5)
    assert r.status_code == 503
    assert r.headers["Content-Type"].startswith("application/json")
    missing = r.json()["missing"]
    assert {"service": "testsvc", "reason": "no live instance"} in missing

    cluster.service([gw], workers=1)
    wait_instances(gw, 1)
    wait_for(lambda: requests.get(gw.url + "/readyz", timeout=5).status_code == 200,
             "readyz 200")
    assert requests.get(gw.url + "/readyz", timeout=5).json() == {"status": "ready", "missing": []}


def test_metrics_are_prometheus_text_with_requests_latency_and_mesh_gauges(system):
    url = system.gw.url
    requests.get(url + "/api/v1/test/echo", timeout=5)
    requests.get(url + "/api/v1/test/echo", timeout=5)
    requests.get(url + "/no/such/path", timeout=5)
    r = requests.get(system.gw.ops_url + "/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text

    # Every line is a comment or a well-formed sample.
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]\w*="[^"]*"(,[a-zA-Z_]\w*="[^"]*")*\})? '
                        r'[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|Inf|NaN)$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    for name, kind in (("http_requests_total", "counter"),
                       ("http_request_duration_seconds", "histogram"),
                       ("tally_mesh_instances", "gauge"),
                       ("tally_mesh_queue_depth", "gauge"),
                       ("tally_mesh_in_flight", "gauge")):
        assert f"# TYPE {name} {kind}\n" in text, name

    route = {"route": "/api/v1/test/echo", "method": "GET"}
    assert parse_metric(text, "http_requests_total", {**route, "code": "200"}) >= 2
    assert parse_metric(text, "http_requests_total",
                        {"route": "unmatched", "method": "GET", "code": "404"}) >= 1
    # Histogram: cumulative buckets ending in +Inf == _count.
    buckets = [(m.group(1), float(m.group(2))) for m in re.finditer(
        r'^http_request_duration_seconds_bucket\{route="/api/v1/test/echo",method="GET",'
        r'le="([^"]+)"\} (\S+)$', text, re.M)]
    assert len(buckets) >= 5 and buckets[-1][0] == "+Inf"
    counts = [c for _, c in buckets]
    assert counts == sorted(counts)
    assert buckets[-1][1] == parse_metric(text, "http_request_duration_seconds_count", route)
    assert parse_metric(text, "http_request_duration_seconds_sum", route) > 0

    assert parse_metric(text, "tally_mesh_instances", {"service": "testsvc"}) == 2
    assert parse_metric(text, "tally_mesh_instances", {"service": "auth"}) == 1
    assert parse_metric(text, "tally_mesh_queue_depth", {"service": "testsvc"}) == 0
    assert parse_metric(text, "tally_mesh_in_flight", {"service": "testsvc"}) is not None


def test_unknown_http_methods_do_not_grow_the_metrics_without_bound(system):
    # Every distinct method label is a new series (a histogram of 15
    # buckets and 500 status counters): methods a client makes up must
    # share a bounded set of labels, or any client can grow the gateway's
    # memory and /metrics without limit.
    rng = random.Random(7)
    for _ in range(60):
        method = "".join(rng.choice(string.ascii_uppercase) for _ in range(7))
        status, _, _ = raw_http(system.gw.url, f"{method} /api/v1/test/echo HTTP/1.1\r\n"
                                               "Host: t\r\nConnection: close\r\n\r\n".encode())
        assert status in (400, 405, 501), status
    text = requests.get(system.gw.ops_url + "/metrics", timeout=5).text
    methods = set(re.findall(r'^http_requests_total\{[^}]*method="([^"]*)"', text, re.M))
    assert len(methods) <= 12, sorted(methods)
