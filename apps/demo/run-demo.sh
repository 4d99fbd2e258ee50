#!/usr/bin/env bash
# run-demo.sh BUILD_DIR: the bundled demo. Starts the demo backends (catalog on 9101 and 9102,
# accounts on 9103), compiles specs/demo.toml and runs gwd on 127.0.0.1:8080 in the foreground.
# Ctrl-C stops gwd and the backends it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
gwctl=$build/apps/gwctl/gwctl
gwd=$build/apps/gwd/gwd
listen=${GW_DEMO_LISTEN:-127.0.0.1:8080}
run=$(mktemp -d "${TMPDIR:-/tmp}/gw-demo.XXXXXX")
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in 9101 9102 9103 "${listen##*:}"; do
  if port_busy "$p"; then
    echo "demo: port $p is already in use; stop what holds it (or set GW_DEMO_LISTEN for gwd)" >&2
    exit 1
  fi
done

python3 "$root/apps/demo/demo_backend.py" --service catalog --port 9101 & pids+=($!)
python3 "$root/apps/demo/demo_backend.py" --service catalog --port 9102 & pids+=($!)
python3 "$root/apps/demo/demo_backend.py" --service accounts --port 9103 & pids+=($!)
for _ in $(seq 50); do
  port_busy 9101 && port_busy 9102 && port_busy 9103 && break
  sleep 0.1
done

"$gwctl" compile "$root/specs/demo.toml" -o "$run/demo.gwrt"
cat <<MSG

gw demo: gwd on http://$listen, backends catalog (9101, 9102) and accounts (9103).
Try, in another terminal:
  curl -s http://$listen/pets/7                           # template route, round robin 1:2
  curl -s http://$listen/users/42/orders -H 'X-Api-Version: 2' -H 'X-User-Id: 42'
  curl -s -X DELETE -i http://$listen/pets                # 405 with Allow
  curl -s -i http://$listen/nowhere                       # 404, JSON with a request id
  curl -s -i -X POST http://$listen/pets -d '{}'          # 401: the partner-keys policy
  curl -s -X POST http://$listen/pets -d '{}' -H 'X-Api-Key: demo-partner-key'
  $gwctl explain specs/demo.toml GET http://$listen/pets/7
Ctrl-C stops everything.

MSG
"$gwd" --table "$run/demo.gwrt" --listen "$listen" --access-log - &
pids+=($!)
wait "${pids[-1]}"
