#!/usr/bin/python3
"""upload_driver.py — the upload rows of bench/upload.sh.

    upload_driver.py make DIR COUNT     COUNT distinct ~1 MiB JPEGs in DIR
    upload_driver.py post BASE TOKEN DIR CONCURRENCY VARIANTS
        POSTs every JPEG of DIR (CONCURRENCY at a time); with VARIANTS=1 each
        upload then GETs its four variants (made on first need). Prints one
        JSON line: {uploads, seconds, per_second, p50_ms, p99_ms, errors,
        first_id}.
"""
import concurrent.futures
import json
import os
import sys
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def make(folder, count):
    import images
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        # 1 MiB of JPEG: random pixels, 1600 x 1100 at libvips's Q75
        data = images.encode("jpeg", 1600, 1100, noise=True)
        with open(os.path.join(folder, "%04d.jpg" % i), "wb") as f:
            f.write(data)


def post(base, token, folder, concurrency, variants):
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    blobs = [open(f, "rb").read() for f in files]
    session_headers = {"Authorization": "Bearer " + token, "Content-Type": "image/jpeg"}
    errors = 0
    times = []
    first = None

    def one(data):
        s = requests.Session()
        t0 = time.monotonic()
        r = s.post(base + "/api/v1/uploads", data=data, headers=session_headers, timeout=120)
        ok = r.status_code == 201
        if ok and variants:
            for url in r.json()["variants"].values():
                v = s.get(base + url.split(base, 1)[-1] if url.startswith("http") else base + url,
                          timeout=120)
                ok = ok and v.status_code == 200
        return ok, time.monotonic() - t0, r.json().get("id") if r.status_code == 201 else None

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for ok, took, upload_id in pool.map(one, blobs):
            errors += 0 if ok else 1
            times.append(took)
            first = first or upload_id
    seconds = time.monotonic() - start
    times.sort()
    print(json.dumps({
        "uploads": len(blobs), "seconds": round(seconds, 2),
        "per_second": round(len(blobs) / seconds, 2),
        "p50_ms": round(times[len(times) // 2] * 1000, 1),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 1),
        "errors": errors, "first_id": first,
        "bytes": round(sum(len(b) for b in blobs) / len(blobs)),
    }))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        post(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] == "1")
