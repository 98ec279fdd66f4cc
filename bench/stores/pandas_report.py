#!/usr/bin/python3
"""pandas_report.py DIR OUT — the store report of shared/API.md's rules
with pandas and numpy (the seed's stack, Debian's python3-pandas), for
bench/stores.sh: reads DIR/status.csv, hours.csv and timezones.csv, writes
OUT (the same CSV as GET /stores/reports/{id}/report.csv) and prints
"seconds peak_rss_kib" on stdout. Local times are placed with
tz_localize(ambiguous=True: the first occurrence, nonexistent=
"shift_forward": the first instant after a gap)."""
import resource
import sys
import time

import numpy as np
import pandas as pd

WEEK = np.int64(7 * 86400 * 10 ** 6)
WINDOWS = [np.int64(3600 * 10 ** 6), np.int64(86400 * 10 ** 6), WEEK]


def business(hours, zones, stores, now):
    """{store: (starts, ends)} sorted, unioned UTC intervals in µs, week only."""
    lo = now - WEEK
    first = (pd.Timestamp(lo, unit="us") - pd.Timedelta(days=3)).normalize()
    days = pd.date_range(first, periods=12, freq="D")
    frame = pd.DataFrame({"day": days, "dow": days.dayofweek})
    rows = hours.merge(frame, on="dow")
    rows["zone"] = rows["store_id"].map(zones).fillna("America/Chicago")
    start = rows["day"] + pd.to_timedelta(rows["start_s"], unit="s")
    end = rows["day"] + pd.to_timedelta(rows["end_s"], unit="s") \
        + pd.to_timedelta((rows["end_s"] < rows["start_s"]).astype(int), unit="D")
    rows = rows[rows["start_s"] != rows["end_s"]]
    start, end = start[rows.index], end[rows.index]
    out_start = np.empty(len(rows), dtype=np.int64)
    out_end = np.empty(len(rows), dtype=np.int64)
    position = {k: i for i, k in enumerate(rows.index)}
    for zone, group in rows.groupby("zone"):
        idx = [position[k] for k in group.index]
        for series, out in ((start[group.index], out_start), (end[group.index], out_end)):
            local = pd.DatetimeIndex(series)
            utc = local.tz_localize(zone, ambiguous=np.ones(len(local), dtype=bool),
                                    nonexistent="shift_forward").tz_convert("UTC")
            out[idx] = utc.asi8 // 1000
    spans = pd.DataFrame({"store_id": rows["store_id"].to_numpy(),
                          "a": np.maximum(out_start, lo), "b": np.minimum(out_end, now)})
    spans = spans[spans["a"] < spans["b"]].sort_values(["store_id", "a"])
    result = {}
    for store, group in spans.groupby("store_id", sort=False):
        a, b = group["a"].to_numpy(), group["b"].to_numpy()
        run_end = np.maximum.accumulate(b)
        new = np.ones(len(a), dtype=bool)
        new[1:] = a[1:] > run_end[:-1]
        ids = np.cumsum(new) - 1
        starts = a[new]
        ends = np.zeros(len(starts), dtype=np.int64)
        np.maximum.at(ends, ids, b)
        result[store] = (starts, ends)
    with_hours = set(hours["store_id"].unique())
    full = (np.array([lo]), np.array([now]))
    return {s: result.get(s, (np.array([], dtype=np.int64),) * 2) if s in with_hours else full
            for s in stores}


def uptime(t, s, a, b):
    """Active µs of the step function (times t, statuses s) in each [a, b)."""
    if len(a) == 0:
        return 0
    cum = np.concatenate(([0], np.cumsum(s[:-1] * np.diff(t))))

    def f(x):
        k = np.searchsorted(t, x, side="right") - 1
        before = k < 0
        k = np.maximum(k, 0)
        value = cum[k] + s[k] * (x - t[k])
        return np.where(before, s[0] * (x - t[0]), value)
    return int(np.sum(f(b) - f(a)))


def main():
    began = time.time()
    folder, out = sys.argv[1], sys.argv[2]
    status = pd.read_csv(f"{folder}/status.csv")
    hours = pd.read_csv(f"{folder}/hours.csv")
    zones = pd.read_csv(f"{folder}/timezones.csv")
    hours = hours.rename(columns={"dayOfWeek": "dow", "day_of_week": "dow"})
    secs = lambda col: pd.to_timedelta(col).dt.total_seconds().astype(np.int64)
    hours["start_s"] = secs(hours["start_time_local"])
    hours["end_s"] = secs(hours["end_time_local"])
    hours.loc[hours["end_s"] == 86399, "end_s"] = 86400
    status["at"] = pd.to_datetime(status["timestamp_utc"].str.replace(" UTC", "", regex=False),
                                  format="%Y-%m-%d %H:%M:%S.%f").astype("int64") // 1000
    status["up"] = (status["status"] == "active").astype(np.int64)
    status = status.drop_duplicates(["store_id", "at"]).sort_values(["store_id", "at"])
    now = np.int64(status["at"].max())
    zone_of = dict(zip(zones["store_id"], zones["timezone_str"]))
    stores = status["store_id"].unique()
    spans = business(hours, zone_of, stores, now)
    lines = ["store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
             "downtime_last_hour,downtime_last_day,downtime_last_week"]
    for store, group in status.groupby("store_id", sort=True):
        t, s = group["at"].to_numpy(), group["up"].to_numpy()
        a_all, b_all = spans[store]
        up, down = [], []
        for w in WINDOWS:
            a = np.maximum(a_all, now - w)
            b = np.minimum(b_all, now)
            keep = a < b
            a, b = a[keep], b[keep]
            total = int(np.sum(b - a))
            u = uptime(t, s, a, b)
            up.append(u)
            down.append(total - u)
        lines.append("%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f" % (
            store, up[0] / 60e6, up[1] / 3600e6, up[2] / 3600e6,
            down[0] / 60e6, down[1] / 3600e6, down[2] / 3600e6))
    with open(out, "w") as f:
        f.write("\r\n".join(lines) + "\r\n")
    print("%.3f %d" % (time.time() - began, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


if __name__ == "__main__":
    main()
