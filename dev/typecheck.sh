#!/usr/bin/env bash
# mypy over the package as it is installed: interfaces/ and serialization/ live at the top of the
# repo but import as warden_algos.interfaces / warden_algos.serialization (setuptools package-dir),
# which mypy cannot map by itself. A throw-away tree of symlinks gives it the installed layout.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
shadow=$(mktemp -d)
trap 'rm -rf "$shadow"' EXIT
mkdir "$shadow/warden_algos"
for entry in "$repo"/warden_algos/*; do ln -s "$entry" "$shadow/warden_algos/"; done
for folder in interfaces serialization build deploy; do ln -s "$repo/$folder" "$shadow/warden_algos/$folder"; done
cd "$shadow"
python -m mypy --config-file "$repo/pyproject.toml" --cache-dir "$repo/.mypy_cache" -p warden_algos "$@"
