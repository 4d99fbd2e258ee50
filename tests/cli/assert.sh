# Assertions for the CLI test scripts (sourced; they set $case first).
# shellcheck shell=bash

fail() { echo "FAIL [$case]: $*" >&2; exit 1; }
# expect_rc RC CMD...: runs CMD, stores output in $out, fails unless it exits with RC.
expect_rc() {
  local want=$1
  shift
  out=$("$@" 2>&1)
  local rc=$?
  [[ $rc == "$want" ]] || { printf '%s\n' "$out" >&2; fail "'$*' exited $rc, expected $want"; }
}
contains() { [[ $out == *"$1"* ]] || { printf '%s\n' "$out" >&2; fail "output lacks: $1"; }; }
lacks() { [[ $out != *"$1"* ]] || { printf '%s\n' "$out" >&2; fail "output has: $1"; }; }
