#!/usr/bin/env bash
# Builds gw_bench in Release mode in build-bench/ and runs it with repetitions, then prints the
# medians and checks the goals. Extra arguments go to the benchmark (e.g. --benchmark_filter=match).
# Environment: REPS (default 5), JOBS (build parallelism, default 1).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
json="$build/bench.json"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGW_BUILD_TESTS=OFF -DGW_BUILD_BENCH=ON \
  >/dev/null
cmake --build "$build" -j"${JOBS:-1}" --target gw_bench

# Medians over repetitions resist the noise of a shared machine better than means.
"$build/bench/gw_bench" --benchmark_repetitions="${REPS:-5}" \
  --benchmark_display_aggregates_only=true \
  --benchmark_out="$json" --benchmark_out_format=json "$@"

command -v python3 >/dev/null || { echo "python3 not found; results are in $json"; exit 0; }
python3 - "$json" <<'EOF'
import json, sys

runs = json.load(open(sys.argv[1]))["benchmarks"]
med = {r["run_name"]: r for r in runs
       if r.get("run_type") == "aggregate" and r.get("aggregate_name") == "median"}
if not med:  # REPS=1: no aggregates, use the single runs
    med = {r["run_name"]: r for r in runs if r.get("run_type") == "iteration"}

# CPU time is the steadier figure on a shared machine; manual-time benchmarks report the CPU
# time of their timed phases as the cpu_ms counter.
def cpu(r):
    return r["cpu_ms"] if "cpu_ms" in r else r["cpu_time"]

print(f"\n{'benchmark (median)':<44}{'wall':>10}{'cpu':>10}  extra")
for name, r in med.items():
    extra = " ".join(f"{k}={v:.4g}" for k, v in r.items()
                     if k.endswith(("_ms", "_MB")) and k != "cpu_ms" or k in ("routes", "miss%"))
    print(f"{name:<44}{r['real_time']:>10.1f}{cpu(r):>10.1f} {r['time_unit']:<2}  {extra}")

def t(prefix, key):  # "BM_match/10" must not pick up "BM_match/100000"
    r = next((r for n, r in med.items() if n == prefix or n.startswith(prefix + "/")), None)
    return None if r is None else (r["real_time"] if key == "wall" else cpu(r))

print("\ngoals")
for key in ("cpu", "wall"):
    small, big = t("BM_match/10", key), t("BM_match/100000", key)
    if small and big:
        ok = big <= 1.5 * small
        print(f"  lookup 100k / lookup 10 ({key}) = {big:.0f} / {small:.0f} ns = {big / small:.2f}x"
              f" (goal <= 1.5x): {'met' if ok else 'NOT met'}")
for fmt in ("json", "yaml"):
    for key in ("cpu", "wall"):
        ms = t(f"BM_openapi_github/{fmt}", key)
        if ms:
            print(f"  import + compile GitHub's API, {fmt.upper()} ({key}) = {ms:.0f} ms (goal < 500 ms): "
                  f"{'met' if ms < 500 else 'NOT met'}")
for key in ("cpu", "wall"):
    ms = t("BM_compile_100k", key)
    if ms:
        print(f"  compile 100k routes ({key}) = {ms:.0f} ms (goal < 2000 ms): "
              f"{'met' if ms < 2000 else 'NOT met'}")
EOF
