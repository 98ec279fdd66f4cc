"""What the event service tells users through the notification service
(services/event/event_notify.c): a role invite (to a registered invitee),
an order completed or cancelled (its buyer), a role accepted (the event's
other organizers). Each goes as the
durable job event.notify, committed with the change, so that an event
request never waits on the notification service, and a notification made
while that service is down arrives once it is back."""

import os
import subprocess
import time

import pytest

from mesh_client import MeshClient
from tally import binary, wait_for, wait_instances
import tally

EVENT = {"starts_at": "2099-06-01T09:00:00Z", "ends_at": "2099-06-03T18:00:00Z",
         "timezone": "Europe/Paris", "state": "published"}
ON_SALE = {"sales_starts_at": "2020-01-01T00:00:00Z", "sales_ends_at": "2099-06-01T00:00:00Z"}


@pytest.fixture(scope="module")
def sys_(event_system):
    return event_system


def _notifications(sys_, user):
    r = sys_.get(user, "/notifications")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _ticket(sys_, owner, event_id, **fields):
    body = {"name": "Entry", "type": "free", "quantity": 10}
    body.update(ON_SALE)
    body.update(fields)
    r = sys_.post(owner, f"/events/{event_id}/tickets", body)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_completed_order_notifies_its_buyer_once(sys_):
    owner, buyer = sys_.user(), sys_.user()
    ev = sys_.event(owner, **EVENT, name="Jazz night")
    t = _ticket(sys_, owner, ev["id"])
    r = sys_.post(buyer, f"/events/{ev['id']}/orders",
                  {"items": [{"ticket_id": t["id"], "quantity": 1}]})
    assert r.status_code == 201 and r.json()["status"] == "completed", r.text
    order = r.json()
    wait_for(lambda: _notifications(sys_, buyer), "the buyer's notification", timeout=30)
    items = _notifications(sys_, buyer)
    assert len(items) == 1
    n = items[0]
    assert n["title"] == "Order completed"
    assert n["message"] == "Your order for Jazz night is complete."
    assert n["target_url"] == f"/events/{ev['id']}/orders/{order['id']}"
    assert _notifications(sys_, owner) == []


def test_a_cancelled_order_notifies_its_buyer(sys_):
    owner, buyer = sys_.user(), sys_.user()
    ev = sys_.event(owner, **EVENT, name="Opera")
    t = _ticket(sys_, owner, ev["id"], type="paid", price=900, currency="EUR")
    order = sys_.post(buyer, f"/events/{ev['id']}/orders",
                      {"items": [{"ticket_id": t["id"], "quantity": 1}]}).json()
    assert order["status"] == "pending"
    r = sys_.post(buyer, f"/events/{ev['id']}/orders/{order['id']}/cancel")
    assert r.status_code == 200, r.text
    wait_for(lambda: _notifications(sys_, buyer), "the cancellation", timeout=30)
    assert [n["title"] for n in _notifications(sys_, buyer)] == ["Order cancelled"]


def test_an_accepted_role_notifies_the_other_organizers(sys_):
    owner, helper = sys_.user(), sys_.user()
    ev = sys_.event(owner, **EVENT, name="Film club")
    sys_.grant(owner, ev["id"], helper, "coorganizer")
    wait_for(lambda: _notifications(sys_, owner), "the organizer's notification", timeout=30)
    items = _notifications(sys_, owner)
    assert [(n["title"], n["message"]) for n in items] == \
        [("Role accepted", "A coorganizer invite to Film club was accepted.")]
    # The helper was told of the invite, not of their own acceptance
    assert [n["title"] for n in _notifications(sys_, helper)] == ["Role invite"]


def test_a_role_invite_notifies_a_registered_invitee(sys_):
    owner, invitee = sys_.user(), sys_.user()
    ev = sys_.event(owner, **EVENT, name="Book fair")
    sys_.invite(owner, ev["id"], invitee.email, "moderator")
    wait_for(lambda: _notifications(sys_, invitee), "the invitee's notification", timeout=30)
    items = _notifications(sys_, invitee)
    assert [(n["title"], n["message"], n["target_url"]) for n in items] == \
        [("Role invite", "You are invited to be moderator of Book fair: the link to accept "
          "is in your mail.", f"/events/{ev['id']}")]
    # An address nobody registered gets the mail alone
    sys_.invite(owner, ev["id"], "nobody-here@example.com", "moderator")
    assert _notifications(sys_, owner) == []


def test_auth_tells_a_service_the_verified_account_of_an_address(sys_):
    user = sys_.user()
    with MeshClient(sys_.gw.mesh, peer="service:event") as svc:
        r = svc.call("auth", "users.by_email", body={"email": user.email.upper()})
        assert r["status"] == 200 and r["body"] == {"id": user.id}, r
        assert svc.call("auth", "users.by_email",
                        body={"email": "nobody-here@example.com"})["status"] == 404
        assert svc.call("auth", "users.by_email", body={"email": "not an address"})["status"] == 400
    with MeshClient(sys_.gw.mesh) as anonymous:
        assert anonymous.call("auth", "users.by_email",
                              body={"email": user.email})["status"] == 403


def test_orders_do_not_wait_on_a_notification_service_that_is_down(sys_):
    owner, buyer = sys_.user(), sys_.user()
    ev = sys_.event(owner, **EVENT, name="Quiet")
    t = _ticket(sys_, owner, ev["id"])
    for proc in sys_.notifications:
        assert proc.stop() == 0
    for gw in (sys_.gw, sys_.gw2):
        wait_for(lambda: tally.instances(gw, "notification") == 0, "notification gone",
                 timeout=30)
    start = time.monotonic()
    r = sys_.post(buyer, f"/events/{ev['id']}/orders",
                  {"items": [{"ticket_id": t["id"], "quantity": 1}]})
    assert r.status_code == 201, r.text
    assert time.monotonic() - start < 2.0
    # Back: the job's retry (run now by the operator's clock) tells the buyer
    gws = [sys_.gw, sys_.gw2]
    sys_.notifications = [tally.notification(sys_.cluster, gws, name="notification-back")]
    for gw in gws:
        wait_instances(gw, 1, service="notification", timeout=60)

    def told():
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3700))
        subprocess.run([binary("tallyctl"), "jobs", "run-due", "event", "--at", at],
                       env=dict(os.environ, TALLY_MESH=sys_.gw.mesh), capture_output=True,
                       timeout=120)
        return _notifications(sys_, buyer)

    wait_for(told, "the notification after the service is back", timeout=60)
    assert [n["title"] for n in _notifications(sys_, buyer)] == ["Order completed"]
