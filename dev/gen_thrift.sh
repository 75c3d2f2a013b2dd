#!/usr/bin/env bash
# Regenerate the Python Thrift code from the IDL (Debian's thrift-compiler; see .ci/run).
#   dev/gen_thrift.sh            write warden_algos/wire/warden_wire/
#   dev/gen_thrift.sh --check    exit 1 if the committed code differs from what the IDL gives
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
thrift --gen py:package_prefix=warden_algos.wire.,slots -out "$out" \
  "$repo/serialization/warden.thrift"
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$out/warden_wire" "$repo/warden_algos/wire/warden_wire" --exclude=__pycache__; then
    echo "warden_algos/wire/warden_wire/ is stale: run dev/gen_thrift.sh" >&2
    exit 1
  fi
  exit 0
fi
rm -rf "$repo/warden_algos/wire/warden_wire"
cp -r "$out/warden_wire" "$repo/warden_algos/wire/warden_wire"
echo "wrote warden_algos/wire/warden_wire/ from serialization/warden.thrift ($(thrift --version))"
