"""``warden-algos new NAME``: a ready algorithm package, so a new author starts from something that
installs, registers and passes its own tests, instead of copying parts of the example by hand.

The package holds: ``pyproject.toml`` (build backend, dependency, the entry point that registers
the algorithm, a ``test`` extra), ``src/<module>/algorithm.py`` (a params model declared up front
and a small working algorithm to replace), ``src/<module>/warden_requests/example.json`` (a
request for it, shipped as package data so ``warden-algos build --verify`` replays it through the
executable), ``tests/test_<name>.py`` (every conformance check as its own test id, plus behaviour
tests to extend) and a README with the commands that come next (check, test, evaluate, build).
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import NamedTuple

from warden_algos.interfaces.base import ALGORITHM_NAME

INTERFACES = ("detect", "rca")


class ScaffoldError(ValueError):
    """The package cannot be made as asked (bad name, taken name, folder in the way)."""


class Scaffold(NamedTuple):
    folder: Path
    distribution: str  # the name pip knows it by
    module: str  # the import name
    class_name: str
    files: list[Path]


def names_for(name: str) -> tuple[str, str, str]:
    """(distribution, module, class name) for algorithm ``name`` (lower_snake_case)."""
    if not ALGORITHM_NAME.match(name):
        raise ScaffoldError(
            f"algorithm name {name!r} must be lower_snake_case (letters, digits, underscores, "
            "starting with a letter), e.g. rolling_quantile"
        )
    class_name = "".join(part.capitalize() for part in name.split("_"))
    return f"warden-{name.replace('_', '-')}", f"warden_{name}", class_name


def scaffold(
    name: str, interface: str, folder: Path, taken: frozenset[str] = frozenset()
) -> Scaffold:
    """Write the package for algorithm ``name`` into ``folder`` (which must not exist or be
    empty). ``taken``: names already registered, refused so the new plugin cannot clash."""
    if interface not in INTERFACES:
        raise ScaffoldError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
    distribution, module, class_name = names_for(name)
    if name in taken:
        raise ScaffoldError(
            f"an algorithm named {name!r} is already registered (warden-algos list): pick another "
            "name, two plugins cannot share one"
        )
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ScaffoldError(f"{folder} exists and is not an empty folder: choose another --dir")
    values = {
        "name": name,
        "distribution": distribution,
        "module": module,
        "class_name": class_name,
        "request": json.dumps(_example_request(name, interface), indent=2),
        **_readme_parts(name, interface),
    }
    contents = {
        "pyproject.toml": PYPROJECT,
        f"src/{module}/__init__.py": INIT,
        f"src/{module}/algorithm.py": DETECT_ALGORITHM if interface == "detect" else RCA_ALGORITHM,
        f"src/{module}/warden_requests/example.json": "$request\n",
        f"tests/test_{name}.py": DETECT_TESTS if interface == "detect" else RCA_TESTS,
        "README.md": README,
    }
    written = []
    for relative, template in contents.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
        written.append(path)
    return Scaffold(folder, distribution, module, class_name, written)


def _readme_parts(name: str, interface: str) -> dict[str, str]:
    """What differs between a detect and an RCA package's README."""
    if interface == "detect":
        grid = '{"k": [4, 6, 8]}'
        return {
            "kind": "detection",
            "method": "detect",
            "evaluate": (
                f"warden-algos evaluate --algorithm {name} --corpus PATH/TO/nab --grid '{grid}'"
            ),
        }
    return {
        "kind": "root-cause-analysis",
        "method": "simple_rca",
        "evaluate": f"warden-algos evaluate --algorithm {name}  "
        "# top-1/top-3 on synthetic cases (warden-algos[evaluate])",
    }


def _example_request(name: str, interface: str) -> dict[str, object]:
    """A small, deterministic request the generated algorithm answers with a finding."""
    start, step, n = 1_700_000_000, 60, 120
    times = [start + step * i for i in range(n)]
    wave = [round(100 + 2 * ((i * 7919) % 13 - 6) / 6, 3) for i in range(n)]
    if interface == "detect":
        wave[90] = 160.0
        return {
            "interface": "detect",
            "algorithm": name,
            "request_id": f"example-{name}",
            "params": {},
            "detect": {"dimensions": ["host=web-1"], "timestamps": times, "values": wave},
        }
    cause = [round(10 + ((i * 31) % 7) / 7, 3) for i in range(n)]
    other = [round(50 + ((i * 17) % 5) / 5, 3) for i in range(n)]
    for i in range(88, 94):
        cause[i] += 40
        wave[i] += 60
    return {
        "interface": "rca",
        "algorithm": name,
        "request_id": f"example-{name}",
        "params": {},
        "rca": {
            "metric_of_interest": {
                "dimensions": {"service": "checkout"},
                "times": times,
                "values": wave,
            },
            "related_metrics": [
                {"dimensions": {"dependency": "db"}, "times": times, "values": cause},
                {"dimensions": {"dependency": "cache"}, "times": times, "values": other},
            ],
            "k": 2,
            "anomalies": [times[90]],
        },
    }


PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "$distribution"
version = "0.1.0"
description = "The $name algorithm for warden-algos."
requires-python = ">=3.11"
dependencies = ["warden-algos", "numpy"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This table is the whole registration: after `pip install`, `warden-algos list` shows the
# algorithm. The name on the left must equal the class's `name`.
[project.entry-points."warden_algos.algorithms"]
$name = "$module.algorithm:$class_name"

[tool.hatch.build.targets.wheel]
packages = ["src/$module"]
"""

INIT = '''\
"""The $name algorithm for warden-algos (registered by the entry point in pyproject.toml)."""
'''

DETECT_ALGORITHM = '''\
"""$class_name: replace the body of ``detect`` with your method.

The starting point flags points far from the series' median in units of its median absolute
deviation (a robust z-score). Keep heavy imports (pandas, scipy, ...) inside ``detect``: every
``warden-algos list`` and every one-shot start imports this module.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)

#: Turns a median absolute deviation into a standard deviation for normal data.
MAD_TO_SIGMA = 1.4826


class ${class_name}Params(DetectorParams):  # DetectorParams adds every_point
    k: float = Field(6.0, gt=0, le=1_000, description="Flag points more than k robust sigmas away.")


class $class_name(DetectAlgorithm[${class_name}Params]):
    """Flags points more than ``k`` robust standard deviations (1.4826 x the median absolute
    deviation) from the series' median.

    Use it for a series without trend or seasonality, as a starting point: this docstring is the
    "when to use it" text that ``warden-algos describe $name`` prints, so say it here.
    """

    name = "$name"
    summary = "Flags points far from the median, in robust standard deviations."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        present = values[~np.isnan(values)]
        if present.size == 0:
            return DetectResult.from_flags(timestamps, np.zeros(values.shape, dtype=bool), values)
        median = float(np.median(present))
        spread = MAD_TO_SIGMA * float(np.median(np.abs(present - median)))
        with np.errstate(all="ignore"):  # NaN (missing) compares False: never flagged
            distance = np.abs(values - median)
            scores = distance / spread if spread > 0 else np.where(distance > 0, np.inf, 0.0)
            flagged = scores > self.params.k
        scores = np.nan_to_num(scores, nan=0.0, posinf=np.finfo(np.float64).max)
        band = np.full(values.shape, median)
        # One detection per run of consecutive flagged points (a host pages once per incident),
        # every flagged point with every_point=True.
        return DetectResult.from_flags(
            timestamps,
            flagged,
            scores,
            every_point=self.params.every_point,
            expected=band,
            lower=band - self.params.k * spread,
            upper=band + self.params.k * spread,
        )
'''

DETECT_TESTS = '''\
"""Your algorithm's tests: the SDK's conformance checks, then what the algorithm must do."""

import json
from pathlib import Path

import numpy as np

from warden_algos.interfaces import run_detect
from warden_algos.testing import parametrize_with_checks
from $module.algorithm import $class_name

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "src" / "$module" / "warden_requests" / "example.json"
)


@parametrize_with_checks($class_name)  # one test id per conformance check
def test_meets_the_warden_algos_contract(algorithm, check) -> None:
    check(algorithm)


def test_flags_the_spike_in_the_example_request() -> None:
    request = json.loads(EXAMPLE.read_text())["detect"]
    timestamps = np.array(request["timestamps"], dtype=np.int64)
    values = np.array(request["values"], dtype=np.float64)
    result = run_detect($class_name(), timestamps, values)
    assert result.timestamps.tolist() == [timestamps[90]]


def test_a_quiet_series_has_no_anomalies() -> None:
    rng = np.random.default_rng(0)
    timestamps = 1_700_000_000 + 60 * np.arange(500)
    result = run_detect($class_name(), timestamps, 10 + rng.normal(0, 1, 500))
    assert result.timestamps.size == 0
'''

RCA_ALGORITHM = '''\
"""$class_name: replace the body of ``simple_rca`` with your method.

The starting point scores each related metric by how far it moved at the anomaly times, in units
of its own typical spread. Keep heavy imports (pandas, scipy, ...) inside ``simple_rca``: every
``warden-algos list`` and every one-shot start imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from warden_algos.interfaces import (
    AlgorithmParams,
    I64Array,
    RCAAlgorithm,
    TimeSeries,
)

#: Turns a median absolute deviation into a standard deviation for normal data.
MAD_TO_SIGMA = 1.4826


class ${class_name}Params(AlgorithmParams):
    tolerance_s: int = Field(
        0, ge=0, le=86_400, description="Seconds around each anomaly time that count as it."
    )


class $class_name(RCAAlgorithm[${class_name}Params]):
    """Scores each related metric by its largest robust deviation (in 1.4826 x median absolute
    deviations from its median) at the anomaly times, or at its last point when none is given.

    Use it when the candidate causes are metrics that spike or drop with the incident; this
    docstring is what ``warden-algos describe $name`` prints, so say when to use yours here.
    """

    name = "$name"
    summary = "Ranks related metrics by how far they moved at the anomaly times."

    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: ${class_name}Params,
    ) -> Mapping[str, float]:
        scores: dict[str, float] = {}
        for series in related_metrics:
            present = ~np.isnan(series.values)
            if not present.any():
                continue
            values = series.values[present]
            times = series.times[present]
            median = float(np.median(values))
            spread = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
            if anomalies.size:
                gap = np.abs(times[:, None] - anomalies[None, :]).min(axis=1)
                at = values[gap <= params.tolerance_s]
            else:
                at = values[-1:]
            if at.size == 0:
                continue
            with np.errstate(all="ignore"):
                moved = float(np.max(np.abs(at - median)))
                score = moved / spread if spread > 0 else (np.inf if moved > 0 else 0.0)
            scores[series.key] = float(min(score, np.finfo(np.float64).max))
        return scores
'''

RCA_TESTS = '''\
"""Your algorithm's tests: the SDK's conformance checks, then what the algorithm must do."""

import json
from pathlib import Path

import numpy as np

from warden_algos.interfaces import TimeSeries, run_rca
from warden_algos.testing import parametrize_with_checks
from $module.algorithm import $class_name

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "src" / "$module" / "warden_requests" / "example.json"
)


def _series(document: dict) -> TimeSeries:
    return TimeSeries(
        document["dimensions"],
        np.array(document["times"], dtype=np.int64),
        np.array(document["values"], dtype=np.float64),
    )


@parametrize_with_checks($class_name)  # one test id per conformance check
def test_meets_the_warden_algos_contract(algorithm, check) -> None:
    check(algorithm)


def test_ranks_the_cause_in_the_example_request_first() -> None:
    request = json.loads(EXAMPLE.read_text())["rca"]
    result = run_rca(
        $class_name(),
        _series(request["metric_of_interest"]),
        [_series(related) for related in request["related_metrics"]],
        request["k"],
        np.array(request["anomalies"], dtype=np.int64),
    )
    top_key, _ = result.contributions[0]
    assert top_key == "dependency=db"
'''

README = """\
# $distribution

The `$name` $kind algorithm for warden-algos, made by `warden-algos new`. Edit
`src/$module/algorithm.py` (params at the top, the method in `$method`), then:

```bash
pip install -e '.[test]'                  # registers it: the entry point in pyproject.toml
warden-algos list                         # $name appears, source "$distribution 0.1.0"
warden-algos describe $name               # its params schema and "when to use it" text
warden-algos check $name                  # the SDK's conformance checks, with fixes
pytest tests                              # the same checks (one id each) + behaviour tests
warden-algos run < src/$module/warden_requests/example.json   # through the real dispatcher
$evaluate
warden-algos build --verify               # with warden-algos[build]: the executable carries it
```

`build --verify` replays every `*.json` request in `src/$module/warden_requests/` (package data,
so it ships in the wheel) and the conformance cases through the built executable, and compares
each answer byte for byte with this installed package's. Add a request there for every behaviour
the platform relies on.
"""
