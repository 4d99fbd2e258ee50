#!/usr/bin/env bash
# The cost of policies per request, A/B: two gwd processes side by side, one serving
# bench/peers.toml (a plain route), one bench/peers-policies.toml (API key + local rate limit),
# both in front of the peers' static nginx backend, driven in interleaved rounds so drift on a
# noisy machine hits both alike. Prints gwd's CPU µs per request per round, the medians and the
# median of the paired differences. Loopback only; stops only the processes it started.
# TABLE (default bench/peers-policies.toml) picks the second table: bench/peers-lua.toml (a
# trivial Lua plugin) and bench/peers-ext-auth.toml (external authorization against the
# backend itself) measure those.
# Environment: ROUNDS (default 10), SECONDS_PER_RUN (default 8), BUILD_DIR (default build),
# PEERS_CONF (default ../shared/bench/conf), LOADGEN_CPUS (0), SERVER_CPUS (1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
conf=${PEERS_CONF:-$root/../shared/bench/conf}
rounds=${ROUNDS:-10} secs=${SECONDS_PER_RUN:-8} lcpu=${LOADGEN_CPUS:-0} scpu=${SERVER_CPUS:-1}
for t in nginx wrk taskset; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
[[ -r $conf/backend-nginx.conf ]] || { echo "no backend config in $conf (set PEERS_CONF)" >&2; exit 1; }
# The policy table's API key is the Host header wrk sends, so its gwd must listen on 18090.
backend=18080 plain=18091 policies=18090
run=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
mkdir -p "$run/tmp"
sed -e "s#@RUN@#$run#g" -e "s#@BACKEND_PORT@#$backend#g" "$conf/backend-nginx.conf" >"$run/backend.conf"
taskset -c "$scpu" nginx -p "$run" -e "$run/backend.err" -c "$run/backend.conf" -g 'daemon off;' &
pids+=($!)
"$build/apps/gwctl/gwctl" compile "$root/bench/peers.toml" -o "$run/plain.gwrt" >/dev/null
"$build/apps/gwctl/gwctl" compile "${TABLE:-$root/bench/peers-policies.toml}" -o "$run/policies.gwrt" >/dev/null
start_gwd() { # table port -> pid
  taskset -c "$scpu" "$build/apps/gwd/gwd" --table "$run/$1.gwrt" --listen "127.0.0.1:$2" \
    --workers 1 --control "$run/$1.sock" >"$run/$1.log" 2>&1 &
  echo $!
}
pa=$(start_gwd plain $plain)
pids+=("$pa")
pb=$(start_gwd policies $policies)
pids+=("$pb")
for port in $plain $policies; do
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" || true) == 200 ]] && break
    sleep 0.1
  done
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/") == 200 ]] ||
    { echo "gwd on $port does not answer 200" >&2; exit 1; }
done
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # pid port -> "cpu_us_per_req req_per_s"
  local t0 t1 out
  t0=$(ticks "$1")
  out=$(timeout $((secs + 10)) taskset -c "$lcpu" wrk -t1 -c50 -d"${secs}s" "http://127.0.0.1:$2/")
  t1=$(ticks "$1")
  awk -v a="$t0" -v b="$t1" -v hz="$hz" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {printf "%.1f %.0f\n", (b - a) * 1e6 / hz / n, r}' <<<"$out"
}
for port in $plain $policies; do # warm-up: connections pooled, buckets made
  timeout 10 taskset -c "$lcpu" wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" >/dev/null
done
printf '%-6s %14s %14s %12s %12s\n' round "plain µs/req" "policies µs/req" "plain req/s" "policies req/s"
: >"$run/rounds"
for i in $(seq "$rounds"); do
  read -r ca ra < <(measure "$pa" $plain)
  read -r cb rb < <(measure "$pb" $policies)
  printf '%-6s %14s %14s %12s %12s\n' "$i" "$ca" "$cb" "$ra" "$rb"
  echo "$ca $cb" >>"$run/rounds"
done
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "median plain:      $(awk '{print $1}' "$run/rounds" | median) µs/req"
echo "median policies:   $(awk '{print $2}' "$run/rounds" | median) µs/req"
echo "median difference: $(awk '{printf "%.1f\n", $2 - $1}' "$run/rounds" | median) µs/req"
