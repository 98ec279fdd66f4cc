"""A flask-monitoring-dashboard stand-in (FMD 1.13's JSON export, as
shared/API.md describes it) serving calls the test controls, on a free
port in a thread of the test process:

    peer = FmdPeer(token="s3cret").start()
    peer.add("main.index", 12.5, "2031-01-05 10:00:00.250000", ip="10.0.0.1")
    peer.url                 # http://127.0.0.1:<port>/dashboard
    peer.mode = "wrong_signature" | "bad_data" | "slow" | "down" | "ok"
    peer.requests            # the paths asked, in order
    peer.stop()

get_json_details answers {link, dashboard-version, config-version,
first-request, total-requests}; get_json_data/<from>/<to> the calls with
from < time <= to (unix seconds), and get_json_monitor_rules the rules,
each as a JWT signed HS256 with the token whose claim `data` is a JSON
string, as FMD signs them (PyJWT). Modes: wrong_signature signs with
another key, bad_data signs calls whose first one has a malformed time,
slow answers after 6 s (past Tally's 5 s timeout), down answers 503."""

import calendar
import datetime
import json
import threading
import time

import jwt
from flask import Flask, Response
from werkzeug.serving import make_server

from tally import free_port


def unix(text):
    """Unix seconds (float) of an FMD time "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC)."""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    moment = datetime.datetime.strptime(text, fmt)
    return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6


class FmdPeer:
    def __init__(self, token="fmd-token", version="1.13.0"):
        self.token = token
        self.version = version
        self.calls = []          # dicts as FMD exports them
        self.rules = {}          # endpoint -> monitor
        self.mode = "ok"
        self.requests = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/dashboard"
        self.app = self._app()
        self.server = None

    def add(self, endpoint, ms, at, ip="127.0.0.1", version="1.0", group_by=None):
        with self.lock:
            self.calls.append({"endpoint": endpoint, "execution_time": ms, "time": at,
                               "version": version, "group_by": group_by, "ip": ip})
            self.rules.setdefault(endpoint, True)

    def _sign(self, data):
        key = "not-" + self.token if self.mode == "wrong_signature" else self.token
        text = json.dumps(data)
        if self.mode == "bad_data" and data and "execution_time" in data[0]:
            text = json.dumps([dict(data[0], time="not a time")] + data[1:])
        return jwt.encode({"data": text}, key, algorithm="HS256")

    def _gate(self, path):
        with self.lock:
            self.requests.append(path)
        if self.mode == "slow":
            time.sleep(6)
        if self.mode == "down":
            return Response("down", status=503)
        return None

    def _app(self):
        app = Flask("fmd_peer")

        @app.route("/dashboard/get_json_details")
        def details():
            refused = self._gate("get_json_details")
            if refused:
                return refused
            with self.lock:
                first = min((unix(c["time"]) for c in self.calls), default=-1)
                total = len(self.calls)
            return {"link": "dashboard", "dashboard-version": self.version,
                    "config-version": 1, "first-request": first, "total-requests": total}

        @app.route("/dashboard/get_json_data/<int:time_from>/<int:time_to>")
        def data(time_from, time_to):
            refused = self._gate(f"get_json_data/{time_from}/{time_to}")
            if refused:
                return refused
            with self.lock:
                rows = [c for c in self.calls if time_from < unix(c["time"]) <= time_to]
            return self._sign(rows)

        @app.route("/dashboard/get_json_monitor_rules")
        def rules():
            refused = self._gate("get_json_monitor_rules")
            if refused:
                return refused
            with self.lock:
                rows = [{"endpoint": e, "last_accessed": None, "monitor": m,
                         "time_added": "2031-01-01 00:00:00", "version_added": "1.0"}
                        for e, m in sorted(self.rules.items())]
            return self._sign(rows)

        return app

    def start(self):
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server = None
