#!/usr/bin/env bash
# The cost of policies per request: runs ../shared/bench/peers.sh twice (nginx and HAProxy as the
# yardstick in both runs), once with gwd on bench/peers.toml (a plain route) and once on
# bench/peers-policies.toml (API key + local rate limit), and prints both tables.
# Environment: REPS (default 3), PEERS (default "direct nginx haproxy"), BUILD_DIR (default build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS_SH:-$root/../shared/bench/peers.sh}
build=${BUILD_DIR:-$root/build}
gwctl=$build/apps/gwctl/gwctl gwd=$build/apps/gwd/gwd
[[ -x $peers ]] || { echo "peers.sh not found at $peers (set PEERS_SH)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export PEERS=${PEERS:-direct nginx haproxy} REPS=${REPS:-3} GW_PORT=18090
for variant in peers peers-policies; do
  "$gwctl" compile "$root/bench/$variant.toml" -o "$tmp/$variant.gwrt" >/dev/null
  GW_NAME=gwd-$variant GW_CMD="$gwd --table $tmp/$variant.gwrt --listen 127.0.0.1:\$GW_PORT --workers 1 --control $tmp/$variant.sock" \
    "$peers" | tee "$tmp/$variant.md"
done
