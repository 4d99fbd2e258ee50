#!/usr/bin/env bash
# golden.sh GWCTL DIR NAME...: runs `gwctl validate --color never NAME` in DIR and compares its
# output and exit code with NAME.expected. With GW_UPDATE_GOLDEN=1 it rewrites the .expected files.
set -u
gwctl=$1 dir=$2
shift 2
cd "$dir" || exit 2
status=0
for name in "$@"; do
  actual=$("$gwctl" validate --color never "$name" 2>&1; echo "exit: $?")
  expected_file="${name%.*}.expected"
  if [[ ${GW_UPDATE_GOLDEN:-0} == 1 ]]; then
    printf '%s\n' "$actual" > "$expected_file"
    continue
  fi
  if ! diff -u "$expected_file" <(printf '%s\n' "$actual"); then
    echo "golden mismatch: $dir/$name (regenerate with GW_UPDATE_GOLDEN=1 if intended)" >&2
    status=1
  fi
done
exit $status
