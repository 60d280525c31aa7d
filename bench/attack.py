#!/usr/bin/env python3
"""Issue 13's load check: /healthz latency while 4 clients send the costliest allowed requests.

Usage: python3 bench/attack.py [BASE_URL] [SECONDS]   (default http://127.0.0.1:18080, 20 s)
Start the server first, e.g. `kam serve --models models --addr 127.0.0.1:18080`.

The four clients, each in a loop:
 1. POST /v1/predict: one customer at horizon 120 with intervals and a new discount rate every
    time (a forecaster and 200 posterior draws built per request: the cache never hits);
 2. POST /v1/predict: the largest batch under the response cap (customers at horizon 120);
 3. POST /v1/forecast at horizon 120 with intervals;
 4. POST /v1/predict: 100 customers by transactions with as_of 120 periods after the model's.
Prints /healthz's latency (max, p99, median over ~20 probes a second) and the server's peak RSS
(from /proc, when the PID is given in KAM_PID).
"""
import json, os, random, statistics, sys, threading, time, urllib.request

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:18080"
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
stop = time.time() + seconds
counts = {}

def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code

def client(name, make):
    while time.time() < stop:
        status = post(*make())
        counts.setdefault(name, {}).setdefault(status, 0)
        counts[name][status] += 1

segs = ["key", "core", "occasional", "dormant", "lapsed", "new"]
batch = [{"id": f"C{i}", "segment": segs[i % 6]} for i in range(400)]
tx = [{"id": f"T{i}", "transactions": [{"date": "2023-01-15", "amount": 50.0}, {"date": "2024-11-20", "amount": 20.0}]} for i in range(100)]
makers = {
    "new discount rate, h=120": lambda: ("/v1/predict", {"customers": [{"id": "A", "segment": "key"}], "horizon": 120, "discount_rate": random.random()}),
    "400 customers, h=120": lambda: ("/v1/predict", {"customers": batch, "horizon": 120}),
    "forecast h=120": lambda: ("/v1/forecast", {"horizon": 120, "intervals": True}),
    "100 by transactions, far as_of": lambda: ("/v1/predict", {"customers": tx, "as_of": "2034-12-31"}),
}
threads = [threading.Thread(target=client, args=(n, m)) for n, m in makers.items()]
for t in threads:
    t.start()
lat, rss = [], 0
pid = os.environ.get("KAM_PID")
while time.time() < stop:
    t0 = time.perf_counter()
    with urllib.request.urlopen(base + "/healthz", timeout=30) as r:
        r.read()
    lat.append((time.perf_counter() - t0) * 1000)
    if pid:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM"):
                rss = int(line.split()[1]) // 1024
    time.sleep(0.05)
for t in threads:
    t.join()
lat.sort()
print(f"/healthz: {len(lat)} probes, median {statistics.median(lat):.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms, max {lat[-1]:.1f} ms")
print("clients (status: count):", json.dumps(counts))
if pid:
    print(f"server peak RSS: {rss} MB")
