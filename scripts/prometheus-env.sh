#!/usr/bin/env bash
# Finds Prometheus and promtool for the integration tests: `prometheus` on PATH (Debian's
# package installed), else Debian's package unpacked (once) into a cache with
# `apt-get download` and `dpkg-deb -x`: no root, no service started, nothing installed.
# Prints the directory holding both binaries (its last line of stdout; the tests read it as
# PROMETHEUS_DIR); everything else goes to stderr. Safe to run repeatedly.
set -euo pipefail
DIR="${PROMETHEUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/infra-anomaly-detector/prometheus}"

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  dirname "$(command -v prometheus)"
  exit 0
fi
if [ -x "$DIR/usr/bin/prometheus" ] && [ -x "$DIR/usr/bin/promtool" ]; then
  echo "$DIR/usr/bin"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || {
  echo "Prometheus not found and no apt-get/dpkg-deb to fetch Debian's package: install prometheus (it brings promtool) or put both on PATH" >&2
  exit 1
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching Debian's prometheus package into $DIR (one time)" >&2
if ! (cd "$tmp" && apt-get download -qq prometheus >&2); then
  # A machine whose package lists were never fetched: as root, fetch them and try again.
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq >&2
    (cd "$tmp" && apt-get download -qq prometheus >&2)
  else
    echo "apt-get download prometheus failed: run 'apt-get update' as root first, or install prometheus" >&2
    exit 1
  fi
fi
mkdir -p "$DIR"
dpkg-deb -x "$tmp"/prometheus_*.deb "$DIR"
[ -x "$DIR/usr/bin/prometheus" ] && [ -x "$DIR/usr/bin/promtool" ] || {
  echo "Debian's prometheus package unpacked into $DIR holds no usr/bin/prometheus and usr/bin/promtool" >&2
  exit 1
}
"$DIR/usr/bin/prometheus" --version 2>&1 | head -1 >&2
echo "$DIR/usr/bin"
