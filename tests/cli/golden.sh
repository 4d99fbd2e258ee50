#!/usr/bin/env bash
# golden.sh [--update] GWCTL DIR [NAME...]: runs `gwctl validate --color never NAME` in DIR and
# compares its output and exit code with NAME.expected (every DIR/*.toml when no NAME is given).
# Only --update rewrites the .expected files: nothing in the environment makes a comparison pass.
set -u
update=0
if [[ ${1:-} == --update ]]; then
  update=1
  shift
fi
if (($# < 2)); then
  echo "usage: golden.sh [--update] GWCTL DIR [NAME...]" >&2
  exit 2
fi
gwctl=$(realpath "$1") dir=$2
shift 2
cd "$dir" || exit 2
names=("$@")
if ((${#names[@]} == 0)); then
  shopt -s nullglob
  names=(*.toml)
fi
status=0
for name in "${names[@]}"; do
  actual=$("$gwctl" validate --color never "$name" 2>&1; echo "exit: $?")
  expected_file="${name%.*}.expected"
  if ((update)); then
    printf '%s\n' "$actual" > "$expected_file"
    echo "updated $dir/$expected_file"
    continue
  fi
  if ! diff -u "$expected_file" <(printf '%s\n' "$actual"); then
    echo "golden mismatch: $dir/$name (if the new output is right: tests/cli/golden.sh --update GWCTL $dir $name)" >&2
    status=1
  fi
done
exit $status
