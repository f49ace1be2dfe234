#!/usr/bin/env bash
# Builds (once) a pinned Telegraf from the Go module proxy, with only the plugins that
# docker/telegraf.conf uses (build tags) and outputs.kafka (for the Kafka consumer-group
# mode: Telegraf -> Kafka -> the service), for the integration tests and for running the
# compose stack's collector by hand. The same version is the compose file's image tag
# (checked by test/unit/deploy/telegraf.test.ts).
# Prints the binary's path (its last line of stdout); everything else goes to stderr.
# Safe to run repeatedly: a cached binary of the pinned version and plugins returns at
# once; a missing or different one is rebuilt. Needs Go >= 1.23 (Telegraf's go.mod):
# $GO, else `go` on PATH, else /usr/local/go/bin/go. It never downloads a Go toolchain.
set -euo pipefail
TELEGRAF_VERSION="1.33.0"
# custom: only the plugins named by tags are compiled in (Telegraf's custom builds).
TELEGRAF_TAGS="custom,inputs.cpu,inputs.mem,inputs.net,inputs.system,inputs.diskio,inputs.swap,inputs.netstat,inputs.nstat,outputs.influxdb,outputs.health,outputs.kafka"
MIN_GO="1.23"
DIR="${TELEGRAF_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/infra-anomaly-detector/telegraf-$TELEGRAF_VERSION}"
BIN="$DIR/telegraf"
MARKER="$DIR/.build"
WANT="$TELEGRAF_VERSION $TELEGRAF_TAGS"

cached() {
  [ -x "$BIN" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] &&
    [ "$("$BIN" --version 2>/dev/null)" = "Telegraf $TELEGRAF_VERSION" ]
}

if cached; then echo "$BIN"; exit 0; fi

GO_BIN="${GO:-$(command -v go || true)}"
[ -z "$GO_BIN" ] && [ -x /usr/local/go/bin/go ] && GO_BIN=/usr/local/go/bin/go
[ -n "$GO_BIN" ] || { echo "go not found: install Go >= $MIN_GO (or set GO=/path/to/go) to build Telegraf $TELEGRAF_VERSION" >&2; exit 1; }
go_version="$(GOTOOLCHAIN=local "$GO_BIN" env GOVERSION 2>/dev/null | sed 's/^go//' || true)"
if [ -z "$go_version" ]; then
  echo "$GO_BIN does not run as Go (go env GOVERSION failed): install Go >= $MIN_GO or set GO=/path/to/go" >&2
  exit 1
fi
if [ "$(printf '%s\n%s\n' "$MIN_GO" "$go_version" | sort -V | head -1)" != "$MIN_GO" ]; then
  echo "$GO_BIN is Go $go_version; Telegraf $TELEGRAF_VERSION needs Go >= $MIN_GO (install a newer Go or set GO=/path/to/go)" >&2
  exit 1
fi

mkdir -p "$DIR"
# Two test processes may provision at once: one builds, the other waits and reuses it.
exec 9>"$DIR.lock"
command -v flock >/dev/null && flock 9
if cached; then echo "$BIN"; exit 0; fi

start=$(date +%s)
echo "building Telegraf $TELEGRAF_VERSION ($TELEGRAF_TAGS) with Go $go_version into $DIR (one time, about 1-3 minutes)" >&2
tmp="$(mktemp -d "$DIR/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Outside any module (go install pkg@version); the local toolchain only; the version
# stamped as Telegraf's Makefile does, so `telegraf --version` names it.
(cd "$tmp" && GOTOOLCHAIN=local GOBIN="$tmp/bin" CGO_ENABLED=0 "$GO_BIN" install \
  -tags "$TELEGRAF_TAGS" \
  -ldflags "-s -w -X github.com/influxdata/telegraf/internal.Version=$TELEGRAF_VERSION" \
  "github.com/influxdata/telegraf/cmd/telegraf@v$TELEGRAF_VERSION") >&2
got="$("$tmp/bin/telegraf" --version 2>/dev/null || true)"
if [ "$got" != "Telegraf $TELEGRAF_VERSION" ]; then
  echo "the built telegraf reports '$got', expected 'Telegraf $TELEGRAF_VERSION'" >&2
  exit 1
fi
mv -f "$tmp/bin/telegraf" "$BIN"
echo "$WANT" >"$MARKER"
echo "Telegraf $TELEGRAF_VERSION ready in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
