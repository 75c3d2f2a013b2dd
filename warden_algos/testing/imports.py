"""What importing an algorithm's module costs a process that has only the SDK loaded.

``warden-algos list``, ``describe`` and every start of the executable import algorithm modules,
so a heavy library imported at module level (pandas alone is ~300 ms) is paid by every caller,
including callers of other algorithms. The measurement runs in a fresh interpreter, since this
process has long since imported whatever the test suite uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import NamedTuple

#: Top-level packages an algorithm module must not import when it is itself imported.
HEAVY_MODULES = frozenset(
    {
        "pandas",
        "scipy",
        "sklearn",
        "statsmodels",
        "prophet",
        "cmdstanpy",
        "matplotlib",
        "seaborn",
        "plotly",
        "torch",
        "tensorflow",
        "keras",
        "jax",
        "xgboost",
        "lightgbm",
        "numba",
        "pyarrow",
        "dask",
        "distributed",
        "mlflow",
        "boto3",
        "botocore",
    }
)

_PROBE = """
import ast, importlib, json, sys, time, types
import warden_algos.interfaces
heavy = set(json.loads(sys.argv[2]))
before = set(sys.modules)
started = time.perf_counter()
importlib.import_module(sys.argv[1])
elapsed_ms = (time.perf_counter() - started) * 1e3
new = sorted(set(sys.modules) - before)
loaded = sorted({name.split(".")[0] for name in new} & heavy)
lines = []
for name in new:
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if not path or name.split(".")[0] in heavy or not path.endswith(".py"):
        continue
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, ValueError):
        continue
    for node in tree.body:  # module level only: an import inside a function is the fix
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for imported in names:
            if imported.split(".")[0] in loaded:
                lines.append(f"{path}:{node.lineno} imports {imported}")
print(json.dumps({"ms": elapsed_ms, "heavy": loaded, "lines": lines}))
"""


class ImportCost(NamedTuple):
    module: str
    milliseconds: float
    heavy: list[str]  # heavy top-level packages the import loaded
    lines: list[str]  # "path:line imports pandas" for each module-level import of one


class ImportProbeFailed(RuntimeError):
    """The module could not be imported in a fresh interpreter."""


def measure_import(module: str) -> ImportCost:
    """Import ``module`` in a fresh interpreter with this process's path; report what it loaded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module, json.dumps(sorted(HEAVY_MODULES))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no error output"]
        raise ImportProbeFailed(f"importing {module} in a fresh interpreter failed: {tail[0]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return ImportCost(module, report["ms"], report["heavy"], report["lines"])
