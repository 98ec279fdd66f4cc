#!/usr/bin/python3
"""generate.py DIR [SEED] — store data of the LoopAPI take-home's size into
DIR/status.csv, DIR/hours.csv, DIR/timezones.csv: 4 500 stores, about
1.9 million polls over 8 days (2023-01-18 .. 2023-01-26 UTC), about 35 000
business-hours rows (some stores without any: 24x7; split shifts,
overnight rows, 23:59:59 ends), zones for nine stores in ten (the rest
default to America/Chicago). Deterministic for a seed."""
import datetime as dt
import random
import sys

STORES = 4500
POLLS = 1_900_000
DAYS = 8
START = dt.datetime(2023, 1, 18, tzinfo=dt.timezone.utc)
ZONES = ["America/Chicago", "America/New_York", "America/Denver", "America/Los_Angeles",
         "America/Boise", "America/Phoenix", "America/Indiana/Indianapolis",
         "America/Detroit", "Pacific/Honolulu", "America/Anchorage"]


def hhmmss(seconds):
    return "%02d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def main():
    out = sys.argv[1]
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 2023)
    stores = rng.sample(range(10 ** 15, 9 * 10 ** 18), STORES)
    with open(f"{out}/timezones.csv", "w") as f:
        f.write("store_id,timezone_str\n")
        for s in stores:
            if rng.random() < 0.9:
                f.write(f"{s},{rng.choice(ZONES)}\n")
    with open(f"{out}/hours.csv", "w") as f:
        f.write("store_id,dayOfWeek,start_time_local,end_time_local\n")
        for s in stores:
            if rng.random() < 0.1:
                continue                                    # 24x7
            kind = rng.random()
            for day in range(7):
                if kind < 0.15:                             # split shift
                    f.write(f"{s},{day},10:00:00,14:00:00\n{s},{day},17:00:00,22:00:00\n")
                elif kind < 0.25:                           # overnight
                    f.write(f"{s},{day},{hhmmss(rng.randrange(17, 21) * 3600)},"
                            f"{hhmmss(rng.randrange(0, 4) * 3600)}\n")
                elif kind < 0.35:
                    f.write(f"{s},{day},00:00:00,23:59:59\n")
                else:
                    a = rng.randrange(5 * 4, 12 * 4) * 900
                    b = a + rng.randrange(6 * 4, 14 * 4) * 900
                    f.write(f"{s},{day},{hhmmss(a)},{hhmmss(min(b, 86399))}\n")
            if kind >= 0.35 and rng.random() < 0.9:         # one more row, overlapping
                f.write(f"{s},{rng.randrange(7)},11:00:00,15:30:00\n")
    per_store = POLLS // STORES
    span = DAYS * 86400 * 10 ** 6
    start_us = int(START.timestamp()) * 10 ** 6
    with open(f"{out}/status.csv", "w") as f:
        f.write("store_id,status,timestamp_utc\n")
        lines = []
        for s in stores:
            up = rng.random() < 0.95
            for _ in range(per_store + rng.randrange(-20, 21)):
                if rng.random() < 0.05:
                    up = not up
                t = start_us + rng.randrange(span)
                stamp = dt.datetime.fromtimestamp(t // 10 ** 6, dt.timezone.utc)
                lines.append(f"{s},{'active' if up else 'inactive'},"
                             f"{stamp:%Y-%m-%d %H:%M:%S}.{t % 10 ** 6:06d} UTC\n")
            if len(lines) > 100000:
                f.writelines(lines)
                lines = []
        f.writelines(lines)


if __name__ == "__main__":
    main()
