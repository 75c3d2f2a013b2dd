#!/usr/bin/env bash
# Build the JVM host harness with plain javac against Debian's libthrift-java (no Maven):
#   bash examples/jvm_host/build.sh [OUT]     (default OUT: examples/jvm_host/out, git-ignored)
# Java classes for the envelope are generated from the one IDL, serialization/warden.thrift, exactly
# as the platform generates them; then prints the classpath to run with.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$here/out}" && cd "${1:-$here/out}" && pwd)
jars=/usr/share/java
# commons-compress: the puller's in-JVM tar reader (SafeTar), never GNU tar
classpath="$jars/thrift.jar:$jars/slf4j-api.jar:$jars/commons-compress.jar"
for jar in thrift.jar slf4j-api.jar slf4j-nop.jar commons-compress.jar; do
  [[ -f "$jars/$jar" ]] || {
    echo "missing $jars/$jar: apt-get install libthrift-java libslf4j-java libcommons-compress-java" >&2
    exit 1
  }
done
rm -rf "$out/gen-java" "$out/classes"
mkdir -p "$out/gen-java" "$out/classes"
# generated_annotations=suppress: no @javax.annotation.Generated, so no javax.annotation jar needed
thrift --gen java:generated_annotations=suppress -out "$out/gen-java" "$repo/serialization/warden.thrift"
find "$out/gen-java" -name '*.java' > "$out/generated.txt"
javac -encoding UTF-8 -nowarn --release 17 -cp "$classpath" -d "$out/classes" @"$out/generated.txt"
# The harness itself compiles warning-free (-path: thrift.jar's manifest names jars Debian leaves out).
find "$here/src" "$here/test" -name '*.java' > "$out/sources.txt"
javac -encoding UTF-8 -Xlint:all,-path -Werror --release 17 \
  -cp "$out/classes:$classpath" -d "$out/classes" @"$out/sources.txt" >&2
# slf4j-nop on the run classpath silences SLF4J's "no binding" warning from libthrift
echo "$out/classes:$classpath:$jars/slf4j-nop.jar"
