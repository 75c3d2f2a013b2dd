"""Per-request latency measured from Java: one-shot vs pooled serve mode, JSON vs Thrift compact.

    python benchmarks/jvm_host.py            # 1,000 and 100,000 points (about two minutes)
    python benchmarks/jvm_host.py --quick    # smoke run

Builds the JVM host harness (examples/jvm_host/build.sh, needs the JDK, thrift-compiler and
libthrift-java) into a temporary folder and runs its ``HostBenchmark`` against the installed
console script, the command the platform runs. The table is printed as Java prints it (median,
p90 and p99 per request, ratios one-shot/pooled and JSON/compact) and kept in
``benchmarks/results/jvm_host.txt``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "jvm_host.txt"
CONSOLE_SCRIPT = Path(sys.executable).parent / "warden-algos"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per row")
    parser.add_argument("--points", default="1000,100000", help="comma-separated sizes")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        classpath = subprocess.run(
            ["bash", str(ROOT / "examples" / "jvm_host" / "build.sh"), out],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        command = [
            "java",
            "-cp",
            classpath,
            "warden.algos.host.HostBenchmark",
            "--command",
            str(CONSOLE_SCRIPT),
            "--points",
            options.points,
            *(["--quick"] if options.quick else []),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    print(done.stdout, end="")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(done.stdout)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
