"""The files in deploy/ are what operators copy: each must load with the code that reads it."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from warden_algos.cli import build_parser
from warden_algos.delivery.cluster import Cluster
from warden_algos.delivery.config import ConfigError, ReleaseConfig
from warden_algos.delivery.signing import TrustedKeys

from .conftest import ROOT

DEPLOY = ROOT / "deploy"


def test_release_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("BUCKET", "PREFIX", "ENDPOINT_URL", "REGION", "CONFIG"):
        monkeypatch.delenv(f"WARDEN_RELEASE_{variable}", raising=False)
    config = ReleaseConfig.load(DEPLOY / "warden-release.toml")
    assert config.bucket == "example-warden-releases" and config.prefix == "warden-algos"


def test_release_config_with_a_credential_is_refused(tmp_path: Path) -> None:
    edited = tmp_path / "warden-release.toml"
    text = (DEPLOY / "warden-release.toml").read_text()
    edited.write_text(text.replace("[release]\n", '[release]\naws_secret_access_key = "x"\n'))
    with pytest.raises(ConfigError):
        ReleaseConfig.load(edited)


def test_test_cluster_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("BUCKET", "PREFIX", "ENDPOINT_URL", "REGION", "CONFIG"):
        monkeypatch.delenv(f"WARDEN_RELEASE_{variable}", raising=False)
    cluster, release = Cluster.load(DEPLOY / "test-cluster.toml")
    assert cluster.channel.startswith("test/")
    assert [node.name for node in cluster.nodes] == ["test-node-1", "test-node-2"]
    assert release.bucket == "example-warden-test-releases"


def test_systemd_unit_runs_a_node_agent_command_the_cli_accepts() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "warden-algos-node.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/bin/warden-algos")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "node" and args.channel == "prod"
    assert args.listen.startswith("127.0.0.1:")  # loopback unless an operator opens it
    assert args.trusted_keys == Path("/etc/warden-algos/trusted-keys.json")  # pinned keys
    environment = unit["Service"]["Environment"]
    assert "WARDEN_RELEASE_CONFIG" in environment or "TMPDIR" in environment


def test_trusted_keys_example_loads_and_shows_a_rotation() -> None:
    keys = TrustedKeys.load(DEPLOY / "trusted-keys.example.json")
    assert len(keys.keys) == 2
    assert [key.not_after is None for key in keys.keys] == [True, False]
