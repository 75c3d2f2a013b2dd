"""One 1k-point ksigma detect over HTTP on loopback: ``warden-algos http`` against ``serve``.

Starts ``warden-algos http`` on a free port (2 workers), sends ``--requests`` sequential requests
on one kept-alive connection and on a new connection each, and prints the medians and p95s in
milliseconds. Run: ``python benchmarks/http_latency.py [--requests 200]``.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import subprocess
import sys
import time

import numpy as np
import orjson


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def body(n: int = 1000) -> bytes:
    rng = np.random.default_rng(0)
    values = 10 + rng.normal(0, 1, n)
    values[n // 2] += 25
    return orjson.dumps(
        {
            "interface": "detect",
            "algorithm": "ksigma",
            "request_id": "bench",
            "params": {},
            "detect": {
                "dimensions": ["host=a"],
                "timestamps": (1_700_000_000 + 60 * np.arange(n)).tolist(),
                "values": values.tolist(),
            },
        }
    )


def timed(connection: http.client.HTTPConnection, payload: bytes) -> float:
    started = time.perf_counter()
    connection.request("POST", "/v1/detect", payload, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - started
    assert response.status == 200 and answer.startswith(b'{"status":"ok"'), answer[:200]
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "warden_algos", "http", "--port", str(port)]
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.1)
        payload = body()
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(20):  # warm-up
            timed(kept, payload)
        keep_alive = [timed(kept, payload) for _ in range(args.requests)]
        fresh = []
        for _ in range(args.requests):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            fresh.append(timed(connection, payload))
            connection.close()
        for name, samples in (("kept-alive connection", keep_alive), ("new connection", fresh)):
            p95 = statistics.quantiles(samples, n=20)[-1]
            print(
                f"{name}: median {statistics.median(samples):.2f} ms, p95 {p95:.2f} ms "
                f"({len(samples)} requests, {len(payload)} byte body)"
            )
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
