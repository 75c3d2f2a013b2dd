"""What the Thrift decode-budget check costs, and what refusing an amplifying request takes.

    python benchmarks/thrift_budget.py            # about half a minute
    python benchmarks/thrift_budget.py --quick    # fewer runs

Three parts. (1) In this process, for legitimate requests of a million points (detect, lists and
packed; RCA over 20 related metrics as lists) in both protocols: the check's median time against
the decode itself (``decode_request`` with ``WARDEN_MAX_REQUEST_MB=none``, so without the check),
the baseline it is a fraction of. (2) Through ``python -m warden_algos run --format F``, one
process per request, measured from a wrapper that is its only parent (peak RSS from
``RUSAGE_CHILDREN``): the review's 4.1M tiny related metrics and 50M one-byte varints, refused;
wall time includes the process starting. (3) In this process, the walk's worst cases: requests it
has to walk element by element (varied tiny structs, varied short strings; walked whatever their
size, with no budget to stop it), per element against the reader's own time per element. Results
go to ``benchmarks/results/thrift_budget.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table
from thrift.protocol.TBinaryProtocol import TBinaryProtocol
from thrift.protocol.TCompactProtocol import TCompactProtocol
from thrift.transport.TTransport import TMemoryBuffer

from warden_algos.interfaces import TimeSeries
from warden_algos.wire import DetectPayload, RCAPayload, Request, get_codec
from warden_algos.wire.thrift_budget import _Walk, check_thrift_decode_budget
from warden_algos.wire.warden_wire import ttypes as wire

RESULTS = Path(__file__).resolve().parent / "results" / "thrift_budget.json"
PROTOCOLS = ("thrift-binary", "thrift-compact")
console = Console(width=140)

WRAPPER = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "warden_algos", "run", "--format", sys.argv[1],
                       "--log-level", "error"], stdin=sys.stdin, stdout=subprocess.PIPE)
sys.stdout.buffer.write(done.stdout)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
"""


@contextmanager
def budget(setting: str | None) -> Iterator[None]:
    old = os.environ.get("WARDEN_MAX_REQUEST_MB")
    if setting is None:
        os.environ.pop("WARDEN_MAX_REQUEST_MB", None)
    else:
        os.environ["WARDEN_MAX_REQUEST_MB"] = setting
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WARDEN_MAX_REQUEST_MB", None)
        else:
            os.environ["WARDEN_MAX_REQUEST_MB"] = old


def median_seconds(action: Callable[[], Any], runs: int) -> float:
    action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# -- raw messages (the generated writer is too slow for millions of elements) -------------------


def serialize(struct: Any, protocol: str) -> bytes:
    buffer = TMemoryBuffer()
    struct.write((TBinaryProtocol if protocol == "thrift-binary" else TCompactProtocol)(buffer))
    data: bytes = buffer.getvalue()
    return data


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def list_field(protocol: str, field_id: int, etype: int, count: int) -> bytes:
    """A list field's header and the list's (long form)."""
    compact_type = {12: 12, 10: 6, 11: 8}[etype]
    if protocol == "thrift-binary":
        return bytes([15]) + field_id.to_bytes(2, "big") + bytes([etype]) + count.to_bytes(4, "big")
    return b"\x09" + varint(field_id << 1) + bytes([0xF0 | compact_type]) + varint(count)


def struct_field(protocol: str, field_id: int) -> bytes:
    if protocol == "thrift-binary":
        return b"\x0c" + field_id.to_bytes(2, "big")
    return b"\x0c" + varint(field_id << 1)


def rca_with_related(protocol: str, elements: bytes, count: int) -> bytes:
    head = serialize(wire.Request(interface_name="rca", algorithm="correlation"), protocol)
    moi = wire.TimeSeries(dimensions={}, times=[1], values=[1.0])
    rca = serialize(wire.RcaPayload(metric_of_interest=moi, k=1, anomalies=[1]), protocol)
    related = list_field(protocol, 2, 12, count) + elements
    return head[:-1] + struct_field(protocol, 8) + rca[:-1] + related + b"\x00\x00"


def detect_with_raw_times(protocol: str, items: bytes, count: int) -> bytes:
    head = serialize(wire.Request(interface_name="detect", algorithm="ksigma"), protocol)
    detect = serialize(wire.DetectPayload(values=[1.0]), protocol)
    times = list_field(protocol, 2, 10, count) + items
    return head[:-1] + struct_field(protocol, 7) + detect[:-1] + times + b"\x00\x00"


def detect_with_strings(protocol: str, strings: list[str]) -> bytes:
    head = serialize(wire.Request(interface_name="detect", algorithm="ksigma"), protocol)
    detect = serialize(wire.DetectPayload(timestamps=[1], values=[1.0]), protocol)
    if protocol == "thrift-binary":
        items = b"".join(len(s).to_bytes(4, "big") + s.encode() for s in strings)
    else:
        items = b"".join(varint(len(s)) + s.encode() for s in strings)
    dimensions = list_field(protocol, 1, 11, len(strings)) + items
    return head[:-1] + struct_field(protocol, 7) + detect[:-1] + dimensions + b"\x00\x00"


# -- (1) legitimate requests ----------------------------------------------------------------------


def legitimate(n: int) -> list[tuple[str, Request]]:
    rng = np.random.default_rng(0)
    times = 1_700_000_000 + 60 * np.arange(n, dtype=np.int64)
    values = 100 + rng.normal(0, 1, n)
    out = []
    for packed in (False, True):
        out.append(
            (
                f"detect {n:,} pts, {'packed' if packed else 'lists'}",
                Request(
                    "detect",
                    "ksigma",
                    DetectPayload(["host=bench"], times, values),
                    params={"window": 60},
                    packed_arrays=packed,
                ),
            )
        )
    per = n // 20
    related = [
        TimeSeries({"dc": f"d{i % 4}", "host": f"h{i}"}, times[:per], rng.normal(5, 1, per))
        for i in range(20)
    ]
    rca = RCAPayload(
        TimeSeries({}, times[:per], values[:per]), related, 3, times[per // 2 : per // 2 + 1]
    )
    out.append(
        (f"rca {n:,} pts / 20 metrics, lists", Request("rca", "correlation", rca, params={}))
    )
    return out


def measure_legitimate(runs: int) -> list[dict[str, Any]]:
    rows = []
    for protocol in PROTOCOLS:
        codec = get_codec(protocol)
        for name, request in legitimate(1_000_000):
            data = codec.encode_request(request)
            with budget(None):
                check = median_seconds(lambda: check_thrift_decode_budget(data, protocol), runs)  # noqa: B023
            with budget("none"):
                decode = median_seconds(lambda: codec.decode_request(data), max(3, runs // 4))  # noqa: B023
            rows.append(
                {
                    "protocol": protocol,
                    "request": name,
                    "request_mib": round(len(data) / (1 << 20), 2),
                    "check_ms": round(check * 1e3, 3),
                    "decode_ms": round(decode * 1e3, 1),
                    "check_vs_decode": round(check / decode, 4),
                }
            )
    return rows


# -- (2) refusals, measured in a process of their own ---------------------------------------------


def attacks() -> list[tuple[str, str, bytes]]:
    out = []
    for protocol in PROTOCOLS:
        tiny = serialize(wire.TimeSeries(times=[], values=[]), protocol)
        out.append(
            (
                protocol,
                "4.1M tiny related metrics",
                rca_with_related(protocol, tiny * 4_100_000, 4_100_000),
            )
        )
        out.append(
            (
                protocol,
                "4.1M empty related metrics",
                rca_with_related(protocol, b"\x00" * 4_100_000, 4_100_000),
            )
        )
    out.append(
        (
            "thrift-compact",
            "50M one-byte varints",
            detect_with_raw_times("thrift-compact", b"\x7f" * 50_000_000, 50_000_000),
        )
    )
    return out


def measure_attacks() -> list[dict[str, Any]]:
    rows = []
    for protocol, name, body in attacks():
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", WRAPPER, protocol],
            input=body,
            capture_output=True,
            timeout=600,
            check=True,
        )
        seconds = time.perf_counter() - started
        response = get_codec(protocol).decode_response(done.stdout)
        in_process = median_seconds(lambda: _refusal(body, protocol), 3)  # noqa: B023
        rows.append(
            {
                "protocol": protocol,
                "request": name,
                "request_mib": round(len(body) / (1 << 20), 1),
                "code": "ok" if response.error is None else response.error.code.value,
                "run_seconds": round(seconds, 2),
                "peak_rss_mib": int(done.stderr.decode().strip().splitlines()[-1]) // 1024,
                "check_ms": round(in_process * 1e3, 2),
                "message": "" if response.error is None else response.error.message,
            }
        )
    return rows


def _refusal(body: bytes, protocol: str) -> None:
    try:
        check_thrift_decode_budget(body, protocol)  # type: ignore[arg-type]
    except Exception:  # the refusal is the expected outcome
        return


# -- (3) the walk's worst cases inside the budget -------------------------------------------------


def measure_worst(count: int) -> list[dict[str, Any]]:
    rows = []
    for protocol in PROTOCOLS:
        codec = get_codec(protocol)
        varied_structs = b"".join(
            serialize(wire.TimeSeries(times=[i], values=[float(i)]), protocol) for i in range(count)
        )
        strings = [f"{i:x}"[-1 - i % 3 :] for i in range(count * 10)]
        cases = [
            (
                "varied tiny related metrics",
                count,
                rca_with_related(protocol, varied_structs, count),
            ),
            ("varied short strings", len(strings), detect_with_strings(protocol, strings)),
        ]
        for name, elements, body in cases:
            compact = protocol == "thrift-compact"
            check = median_seconds(lambda: _Walk(body, 1 << 62, compact).request(), 3)  # noqa: B023
            with budget("none"):
                decode = median_seconds(lambda: _decode(codec, body), 3)  # noqa: B023
            rows.append(
                {
                    "protocol": protocol,
                    "request": name,
                    "elements": elements,
                    "check_ns_per_element": round(check / elements * 1e9),
                    "decode_ns_per_element": round(decode / elements * 1e9),
                    "check_vs_decode": round(check / decode, 2),
                }
            )
    return rows


def _decode(codec: Any, body: bytes) -> None:
    try:
        codec.decode_request(body)
    except Exception:  # the strings request has no timestamps: refused after decoding
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    options = parser.parse_args()
    runs = 5 if options.quick else 21
    legit = measure_legitimate(runs)
    table = Table(title="(1) the check on legitimate requests (median, in-process)")
    for column in ("protocol", "request", "MiB", "check ms", "decode ms", "check / decode"):
        table.add_column(column, justify="left" if column in ("protocol", "request") else "right")
    for row in legit:
        table.add_row(
            row["protocol"],
            row["request"],
            f"{row['request_mib']:.1f}",
            f"{row['check_ms']:.3f}",
            f"{row['decode_ms']:.1f}",
            f"{row['check_vs_decode']:.2%}",
        )
    console.print(table)
    refused = measure_attacks()
    table = Table(title="(2) amplifying requests through `warden_algos run` (one process each)")
    for column in ("protocol", "request", "MiB", "answer", "run s", "peak RSS MiB", "check ms"):
        table.add_column(
            column, justify="left" if column in ("protocol", "request", "answer") else "right"
        )
    for row in refused:
        table.add_row(
            row["protocol"],
            row["request"],
            f"{row['request_mib']:.1f}",
            row["code"],
            f"{row['run_seconds']:.2f}",
            str(row["peak_rss_mib"]),
            f"{row['check_ms']:.2f}",
        )
    console.print(table)
    worst = measure_worst(20_000 if options.quick else 200_000)
    table = Table(title="(3) element-by-element walks inside the budget (in-process)")
    for column in (
        "protocol",
        "request",
        "elements",
        "check ns/el",
        "decode ns/el",
        "check / decode",
    ):
        table.add_column(column, justify="left" if column in ("protocol", "request") else "right")
    for row in worst:
        table.add_row(
            row["protocol"],
            row["request"],
            f"{row['elements']:,}",
            str(row["check_ns_per_element"]),
            str(row["decode_ns_per_element"]),
            f"{row['check_vs_decode']:.2f}x",
        )
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_bytes(
        orjson.dumps(
            {
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "quick": options.quick,
                "legitimate": legit,
                "refused": refused,
                "worst_walks": worst,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
