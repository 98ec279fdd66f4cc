"""Store monitoring's polled sources through the platform's SSRF guard
(shared/tl_fetch.c): without TALLY_WEBHOOK_ALLOW_PRIVATE, a source on a
private address (here 127.0.0.1) is never fetched, and its state says why.
A service of its own (its own module): the other tests of sources allow
private addresses to reach their local server."""

import pytest

from test_stores_source import LM1, STATUS, CsvServer, start, status_rows, wait_for


@pytest.fixture(scope="module")
def sys_():
    c, system = start({"TALLY_WEBHOOK_ALLOW_PRIVATE": ""})
    yield system
    failures = c.stop()
    assert not failures, "\n".join(failures)


def test_a_private_address_is_refused_without_the_setting(sys_):
    web = CsvServer()
    try:
        user = sys_.user()
        web.put("/s.csv", STATUS + status_rows(3), '"s1"', LM1)
        r = sys_.request("PUT", user, "/stores/source", json={"status_url": web.url("/s.csv")})
        assert r.status_code == 200, r.text
        wait_for(lambda: sys_.source(user)["files"]["status"]["polled_at"], "the first poll",
                 timeout=60)
        state = sys_.source(user)["files"]["status"]
        assert "private address" in state["error"], state
        assert state["loaded_at"] is None and state["http_status"] is None
        sys_.run_due(1.01)
        assert "private address" in sys_.source(user)["files"]["status"]["error"]
        assert web.taken() == []            # nothing ever reached the server
    finally:
        web.stop()
