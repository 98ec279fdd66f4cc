"""Fixtures: a cluster per test (fresh processes, so that no test depends on
another's state), and a shared one for the many tests that only send HTTP."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tally import Cluster, wait_instances  # noqa: E402


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    failures = c.stop()
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def system():
    """One gateway, two test service instances and the stand-in auth service."""
    c = Cluster()
    gw = c.gateway()
    c.service([gw], workers=4)
    c.service([gw], workers=4)
    c.service([gw], role="auth", workers=2)
    wait_instances(gw, 2)
    wait_instances(gw, 1, service="auth")
    c.gw = gw
    yield c
    failures = c.stop()
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def tracker_system():
    """Gateways, auth, mailer (to a real SMTP server) and the tracker
    service, shared by a test module (tracker_system.py)."""
    from tracker_system import TrackerSystem
    c = Cluster()
    system = TrackerSystem(c)
    yield system
    failures = c.stop()
    system.stop()
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def event_system(request):
    """Two gateways, auth, mailer (to a real SMTP server) and two instances
    of the event service, shared by a test module (event_system.py); the
    module's EVENT_ENV, when it has one, adds to the instances' settings."""
    from event_system import EventSystem
    c = Cluster()
    try:
        system = EventSystem(c, event_env=getattr(request.module, "EVENT_ENV", None))
    except BaseException:
        c.stop()
        raise
    yield system
    failures = c.stop()
    system.stop()
    assert not failures, "\n".join(failures)
