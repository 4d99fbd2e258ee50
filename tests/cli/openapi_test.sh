#!/usr/bin/env bash
# openapi_test.sh GWCTL SOURCE_DIR CASE: gwctl on OpenAPI documents, one CASE per CTest test.
# The public documents in tests/data/openapi/corpus are unmodified copies (see its SOURCES.md).
set -uo pipefail
gwctl=$1 src=$2 case=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/gwctl-openapi.XXXXXX")
trap 'rm -rf "$work"' EXIT
corpus=$src/tests/data/openapi/corpus
ext=$src/tests/data/openapi/extensions

source "$(dirname "$0")/assert.sh"

case $case in
corpus-counts)
  # DOC, extra arguments, and the report line it must print.
  while IFS='|' read -r doc args report; do
    # shellcheck disable=SC2086
    expect_rc 0 "$gwctl" openapi import "$corpus/$doc" $args -o "$work/out.toml"
    contains "$report"
    expect_rc 0 "$gwctl" validate "$work/out.toml"
  done <<'LIST'
petstore.yaml||3 operations -> 3 routes, 1 upstream, 0 policies
petstore.json||3 operations -> 3 routes, 1 upstream, 0 policies
petstore-expanded.yaml||4 operations -> 4 routes, 1 upstream, 0 policies
uspto.yaml||3 operations -> 3 routes, 1 upstream, 0 policies
api-with-examples.yaml|--upstream default=http://127.0.0.1:9000|2 operations -> 2 routes, 1 upstream
api-with-examples.json|--upstream default=http://127.0.0.1:9000|2 operations -> 2 routes, 1 upstream
link-example.yaml|--upstream default=http://127.0.0.1:9000|6 operations -> 6 routes, 1 upstream
callback-example.yaml|--upstream default=http://127.0.0.1:9000|1 operation -> 1 route, 1 upstream
non-oauth-scopes.yaml|--upstream default=http://127.0.0.1:9000|1 operation -> 1 route, 1 upstream, 2 policies
webhook-example.yaml||0 operations -> 0 routes, 0 upstreams, 0 policies
swagger2-petstore.yaml||3 operations -> 3 routes, 1 upstream, 0 policies
train-travel-api.openapi.yaml||7 operations -> 14 routes, 2 upstreams, 3 policies
api.github.com.json||623 operations -> 623 routes, 2 upstreams, 0 policies
api.github.com.yaml||623 operations -> 623 routes, 2 upstreams, 0 policies
LIST
  ;;
twins)
  # A JSON document and its YAML twin give the same routes.
  expect_rc 0 "$gwctl" diff --exit-code "$corpus/petstore.json" "$corpus/petstore.yaml"
  contains "no differences"
  expect_rc 0 "$gwctl" diff --exit-code "$corpus/api.github.com.json" "$corpus/api.github.com.yaml"
  contains "no differences"
  printf 'version = 1\n[upstreams.default]\nendpoints = ["127.0.0.1:9000"]\n' >"$work/up.toml"
  expect_rc 0 "$gwctl" diff --exit-code "$corpus/api-with-examples.json" \
    "$corpus/api-with-examples.yaml" --with "$work/up.toml"
  contains "no differences"
  # ... and compile to tables that differ only in source names and digests.
  expect_rc 0 "$gwctl" compile "$corpus/petstore.json" -o "$work/a.gwrt" --timestamp 0
  expect_rc 0 "$gwctl" compile "$corpus/petstore.yaml" -o "$work/b.gwrt" --timestamp 0
  expect_rc 0 "$gwctl" diff --exit-code "$work/a.gwrt" "$work/b.gwrt"
  ;;
import-equals-direct)
  # Compiling a document and compiling its import give the same routes.
  for doc in petstore-expanded.yaml swagger2-petstore.yaml train-travel-api.openapi.yaml \
    api.github.com.json; do
    expect_rc 0 "$gwctl" openapi import "$corpus/$doc" -o "$work/imported.toml"
    expect_rc 0 "$gwctl" diff --exit-code "$corpus/$doc" "$work/imported.toml"
    contains "no differences"
  done
  ;;
report-and-strict)
  expect_rc 0 "$gwctl" --color never openapi import "$corpus/train-travel-api.openapi.yaml" \
    -o "$work/t.toml"
  contains "train-travel-api.openapi.yaml:708:5: warning[openapi.approximated]: OAuth 2.0 scheme"
  contains "3 constructs dropped or approximated"
  out=$(cat "$work/t.toml")
  contains "# Dropped or approximated:"
  contains 'name = "get-booking:2"'
  contains '[upstreams."api.example.com"]'
  contains 'options = [ { policies = [ "OAuth2" ], scopes = [ "read" ] } ]'
  rm -f "$work/t.toml"
  expect_rc 1 "$gwctl" openapi import --strict "$corpus/train-travel-api.openapi.yaml" \
    -o "$work/t.toml"
  contains "error[openapi.approximated]"
  contains "--strict refuses them"
  [[ ! -e $work/t.toml ]] || fail "--strict wrote the output anyway"
  expect_rc 0 "$gwctl" openapi import --strict "$corpus/petstore.json" -o "$work/p.toml"
  # To stdout when there is no -o; the report then goes to stderr.
  out=$("$gwctl" openapi import "$corpus/petstore.yaml" 2>/dev/null)
  contains 'template = "/v1/pets/{petId}"'
  lacks "3 operations"
  ;;
upstreams)
  # A server-less document needs a host: one error naming the fix, not one per route.
  expect_rc 1 "$gwctl" --color never validate "$corpus/link-example.yaml"
  contains "error[openapi.no-host]: the document has no servers, so its routes have no upstream host (6 operations)"
  contains "--upstream default=http://HOST:PORT"
  contains "invalid: 1 error"
  # A TOML spec alongside supplies it, and replaces a server's upstream of the same name.
  printf 'version = 1\n[upstreams.default]\nendpoints = ["127.0.0.1:9000"]\n' >"$work/up.toml"
  expect_rc 0 "$gwctl" validate "$work/up.toml" "$corpus/link-example.yaml"
  contains "ok: 6 routes, 1 upstream"
  printf 'version = 1\n[upstreams."petstore.swagger.io"]\nendpoints = ["127.0.0.1:9100"]\n' >"$work/pet.toml"
  expect_rc 0 "$gwctl" --color never validate "$corpus/petstore.yaml" "$work/pet.toml"
  contains 'note[openapi.note]: upstream "petstore.swagger.io" replaces server "http://petstore.swagger.io/v1"'
  expect_rc 0 "$gwctl" compile "$corpus/petstore.yaml" "$work/pet.toml" -o "$work/pet.gwrt"
  expect_rc 0 "$gwctl" --color never inspect "$work/pet.gwrt"
  contains "petstore.swagger.io  round_robin  127.0.0.1:9100"
  expect_rc 0 "$gwctl" openapi import "$corpus/petstore.yaml" --upstream petstore.swagger.io=http://10.1.2.3:8080
  contains 'endpoints = ["10.1.2.3:8080"]'
  expect_rc 1 "$gwctl" openapi import "$corpus/petstore.yaml" --upstream nope=http://10.1.2.3
  contains "--upstream nope: no server or x-gw-upstream uses that name (upstreams: petstore.swagger.io)"
  expect_rc 2 "$gwctl" openapi import "$corpus/petstore.yaml" --upstream petstore.swagger.io
  ;;
extensions)
  printf 'version = 1\n[upstreams.pets-v2]\nendpoints = ["127.0.0.1:9200"]\n[policies.audit]\nkind = "headers"\nrequest = { set = { x-audit = "1" } }\n' >"$work/x.toml"
  expect_rc 0 "$gwctl" openapi import "$ext/valid-all-levels.yaml" --with "$work/x.toml" -o "$work/o.toml"
  contains "4 operations -> 3 routes"
  contains "wrote $work/o.toml (3 routes, 1 upstream, 2 policies)"
  out=$(cat "$work/o.toml")
  contains 'name = "pet"'
  contains 'hosts = ["shop.example.com"]'
  contains 'timeout = "2s"'
  contains 'max_body = "1MiB"'
  contains 'policies = ["audit", "rate-limit-2"]'
  contains 'retries = 3'
  contains 'upstream = "pets-v2"'
  contains 'rate = "100/s"'
  lacks "internal/metrics"
  lacks "pets-v2]"     # --with definitions are used, not copied
  lacks "[policies.audit]"
  # Without them, the references are unknown.
  expect_rc 1 "$gwctl" openapi import "$ext/valid-all-levels.yaml"
  contains 'error[ref.unknown-policy]: route "createPet" references unknown policy "audit"' 
  expect_rc 0 "$gwctl" --color never explain "$ext/valid-all-levels.yaml" GET http://shop.example.com/api/pets/9 --with "$work/x.toml"
  contains 'route "pet" -> upstream "pets-v2"'
  expect_rc 1 "$gwctl" --color never validate "$ext/invalid-unknown-extension.yaml"
  contains 'invalid-unknown-extension.yaml:8:7: error[openapi.unknown-extension]: unknown gw extension "x-gw-upstreams"'
  contains 'did you mean "x-gw-upstream"?'
  expect_rc 1 "$gwctl" --color never validate "$ext/invalid-retries-type.yaml"
  contains "error[openapi.bad-extension]: x-gw-retries must be a non-negative integer"
  ;;
errors)
  # Positions in JSON and YAML alike; what is not OpenAPI says so.
  printf '{\n  "openapi": "3.0.0",\n  "info": {"title": "x", "version": "1"},\n  "paths": {"/a": {"get": {}},}\n}\n' >"$work/bad.json"
  expect_rc 1 "$gwctl" --color never validate "$work/bad.json"
  contains "bad.json:4:31: error[openapi.syntax]"
  printf 'openapi: 3.0.0\ninfo: {title: x, version: "1"}\npaths:\n  /a:\n    get: [\n' >"$work/bad.yaml"
  expect_rc 1 "$gwctl" --color never validate "$work/bad.yaml"
  contains "bad.yaml:6:1: error[openapi.syntax]"
  printf 'openapi: 3.0.0\ninfo: {title: x, version: "1"}\nservers: [{url: "http://h"}]\npaths:\n  pets:\n    get: {}\n' >"$work/rel.yaml"
  expect_rc 1 "$gwctl" --color never validate "$work/rel.yaml"
  contains 'rel.yaml:5:3: error[openapi.bad-path]: path "pets" does not start with "/"'
  printf '{"name": "a package.json, say"}\n' >"$work/package.json"
  expect_rc 1 "$gwctl" --color never validate "$work/package.json"
  contains "error[openapi.not-openapi]"
  printf 'openapi: 2.0\ninfo: {}\npaths: {}\n' >"$work/v2.yaml"
  expect_rc 1 "$gwctl" --color never validate "$work/v2.yaml"
  contains "error[openapi.unsupported-version]: OpenAPI 2.0 is not supported"
  expect_rc 1 "$gwctl" openapi import "$src/specs/demo.toml"
  contains "demo.toml: not an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML); TOML specs go in --with"
  # A document that cannot be read says why, not that it is not OpenAPI.
  truncate -s 65M "$work/huge.yaml"
  expect_rc 1 "$gwctl" --color never openapi import "$work/huge.yaml"
  contains "error[spec.too-large]"
  lacks "not an OpenAPI"
  ;;
hostile)
  # Refused quickly (the timeout bounds each run) and with bounded memory.
  python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
with open(f"{w}/bomb.yaml", "w") as f:
    f.write('openapi: 3.0.0\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n')
    prev = "a"
    for n in "bcdefghijkl":
        f.write(f"{n}: &{n} [" + ",".join(["*" + prev] * 9) + "]\n")
        prev = n
with open(f"{w}/flow.yaml", "w") as f:
    f.write("openapi: 3.0.0\nx: " + "[" * 100000 + "]" * 100000 + "\n")
with open(f"{w}/block.yaml", "w") as f:
    f.write("openapi: 3.0.0\nx:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 5000)))
with open(f"{w}/deep.json", "w") as f:
    f.write('{"openapi": "3.0.0", "x": ' + "[" * 100000 + "]" * 100000 + "}")
with open(f"{w}/huge.yaml", "w") as f:
    f.write('openapi: 3.0.0\nx: "' + "a" * (33 << 20) + '"\n')
PY
  for f in bomb.yaml flow.yaml block.yaml deep.json huge.yaml; do
    out=$( (ulimit -v 1000000; timeout 10 "$gwctl" --color never validate "$work/$f") 2>&1)
    rc=$?
    [[ $rc == 1 ]] || { printf '%s\n' "$out" >&2; fail "$f: exited $rc, expected 1"; }
    [[ $out == *"error[openapi.too-complex]"* || $out == *"error[spec.too-large]"* ||
      $out == *"nesting deeper than 200 levels"* ]] || { printf '%s\n' "$out" >&2; fail "$f: not refused as hostile"; }
  done
  ;;
refs)
  mkdir -p "$work/api/paths" "$work/outside"
  cat >"$work/api/main.yaml" <<'YAML'
openapi: 3.0.3
info: {title: split, version: "1"}
servers: [{url: "http://127.0.0.1:9000"}]
paths:
  /pets:
    $ref: "paths/pets.yaml"
  /pets/{id}:
    $ref: "paths/pets.yaml#/item"
components:
  securitySchemes:
    key: {$ref: "paths/schemes.yaml#/key"}
  schemas:
    Node:
      type: object
      properties: {next: {$ref: "#/components/schemas/Node"}}
YAML
  cat >"$work/api/paths/pets.yaml" <<'YAML'
get:
  operationId: listPets
  security: [{key: []}]
  responses: {"200": {description: ok}}
item:
  get: {operationId: getPet, responses: {"200": {description: ok}}}
YAML
  printf 'key: {type: apiKey, in: header, name: x-api-key}\n' >"$work/api/paths/schemes.yaml"
  expect_rc 0 "$gwctl" openapi import "$work/api/main.yaml"
  contains 'template = "/pets/{id}"'
  contains '[policies.key]'
  contains 'header = "x-api-key"'
  contains 'policies = ["key"]'
  printf 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\nservers: [{url: "http://h"}]\npaths:\n  /x: {$ref: "../outside/x.yaml"}\n' >"$work/api/escape.yaml"
  printf 'get: {responses: {}}\n' >"$work/outside/x.yaml"
  expect_rc 1 "$gwctl" --color never validate "$work/api/escape.yaml"
  contains "escape.yaml:5:8: error[openapi.ref-outside]"
  printf 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\nservers: [{url: "http://h"}]\npaths:\n  /x: {$ref: "#/paths/~1y"}\n  /y: {$ref: "#/paths/~1x"}\n' >"$work/api/cycle.yaml"
  expect_rc 1 timeout 10 "$gwctl" --color never validate "$work/api/cycle.yaml"
  contains "error[openapi.ref-cycle]"
  printf 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\nservers: [{url: "http://h"}]\npaths:\n  /x: {$ref: "https://example.com/x.yaml"}\n' >"$work/api/net.yaml"
  expect_rc 0 "$gwctl" --color never validate "$work/api/net.yaml"
  contains "warning[openapi.dropped]"
  contains "gw never fetches documents"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "ok [$case]"
