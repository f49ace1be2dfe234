#!/usr/bin/env bash
# Assembles (once) a pinned Apache Kafka broker from Maven Central for the integration
# tests and the benchmarks: the `org.apache.kafka:kafka_2.13` jar and its runtime
# dependencies, plus log4j's slf4j binding so that the broker's slf4j lines are logged,
# copied by `mvn dependency:copy-dependencies` from a generated pom into one lib/
# directory. The broker runs in KRaft mode as `java -cp 'lib/*' kafka.Kafka
# server.properties` (test/helpers/kafka.ts writes the configuration and formats the
# storage with kafka.tools.StorageTool).
# Prints the lib/ directory's path (its last line of stdout; the tests read it as
# KAFKA_LIB); everything else goes to stderr.
# Safe to run repeatedly: a cached lib/ of the pinned version returns at once; a missing
# or different one is fetched again. Needs Java >= 17 (the broker's bytecode is Java 17)
# and Maven: $JAVA, else $JAVA_HOME/bin/java, else `java` on PATH; $MVN, else `mvn`.
set -euo pipefail
KAFKA_VERSION="4.1.1"
# The slf4j 1.7 -> log4j2 binding, the same log4j2 release that kafka-server depends on.
LOG4J_VERSION="2.24.3"
MIN_JAVA="17"
DIR="${KAFKA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/infra-anomaly-detector/kafka-$KAFKA_VERSION}"
LIB="$DIR/lib"
MARKER="$DIR/.version"
WANT="kafka_2.13 $KAFKA_VERSION log4j-slf4j-impl $LOG4J_VERSION"

cached() {
  [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] && [ -f "$LIB/kafka_2.13-$KAFKA_VERSION.jar" ]
}

if cached; then echo "$LIB"; exit 0; fi

JAVA_BIN="${JAVA:-}"
[ -z "$JAVA_BIN" ] && [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && JAVA_BIN="$JAVA_HOME/bin/java"
[ -z "$JAVA_BIN" ] && JAVA_BIN="$(command -v java || true)"
[ -n "$JAVA_BIN" ] || { echo "java not found: install Java >= $MIN_JAVA (apt-get install openjdk-17-jre-headless) or set JAVA=/path/to/java to run Kafka $KAFKA_VERSION" >&2; exit 1; }
# `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' (or "1.8.0_412" for Java 8).
java_version="$("$JAVA_BIN" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -1)"
java_major="${java_version%%.*}"
[ "$java_major" = "1" ] && java_major="$(echo "$java_version" | cut -d. -f2)"
if ! [ "$java_major" -ge "$MIN_JAVA" ] 2>/dev/null; then
  echo "$JAVA_BIN is Java '${java_version:-unknown}'; Kafka $KAFKA_VERSION needs Java >= $MIN_JAVA (apt-get install openjdk-17-jre-headless or set JAVA=/path/to/java)" >&2
  exit 1
fi
MVN_BIN="$(command -v "${MVN:-mvn}" || true)"
[ -n "$MVN_BIN" ] || { echo "mvn not found: install Maven (apt-get install maven) or set MVN=/path/to/mvn to fetch Kafka $KAFKA_VERSION from Maven Central" >&2; exit 1; }

mkdir -p "$DIR"
# Two test processes may provision at once: one fetches, the other waits and reuses it.
exec 9>"$DIR.lock"
command -v flock >/dev/null && flock 9
if cached; then echo "$LIB"; exit 0; fi

start=$(date +%s)
echo "fetching Apache Kafka $KAFKA_VERSION (kafka_2.13 and its runtime dependencies) from Maven Central into $LIB (one time, about 10-60 s)" >&2
tmp="$(mktemp -d "$DIR/fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.infra-anomaly-detector</groupId>
  <artifactId>kafka-broker-lib</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
      <scope>runtime</scope>
    </dependency>
  </dependencies>
</project>
EOF
if ! "$MVN_BIN" -B -q -f "$tmp/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp/lib" >"$tmp/mvn.log" 2>&1; then
  echo "mvn dependency:copy-dependencies of org.apache.kafka:kafka_2.13:$KAFKA_VERSION failed: $(grep -m1 -E '\[ERROR\]' "$tmp/mvn.log" || tail -1 "$tmp/mvn.log")" >&2
  exit 1
fi
# The assembled class path must run: `kafka.Kafka --version` prints the version first.
got="$("$JAVA_BIN" -cp "$tmp/lib/*" kafka.Kafka --version 2>/dev/null | head -1 || true)"
if [ "$got" != "$KAFKA_VERSION" ]; then
  echo "the assembled Kafka reports '$got' to kafka.Kafka --version, expected '$KAFKA_VERSION'" >&2
  exit 1
fi
rm -rf "$LIB"
mv "$tmp/lib" "$LIB"
echo "$WANT" >"$MARKER"
echo "Kafka $KAFKA_VERSION ready in $(( $(date +%s) - start )) s ($(ls "$LIB" | wc -l) jars)" >&2
echo "$LIB"
