#!/usr/bin/env bash
# cli_test.sh GWCTL SOURCE_DIR CASE: end-to-end checks of gwctl's offline commands, one CASE per
# CTest test. Each case runs gwctl as a user would and asserts on output and exit codes.
set -uo pipefail
gwctl=$(realpath "$1") src=$2 case=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/gwctl-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
demo=$src/specs/demo.toml

source "$(dirname "$0")/assert.sh"

# start_demo_gwd: gwd on the demo spec (compiled from its absolute path, in $work), stopped on exit.
start_demo_gwd() {
  [[ -x $(dirname "$gwctl")/../gwd/gwd ]] || fail "no gwd next to gwctl"
  export GW_SOCKET=$work/run/gwd.sock
  trap '"$gwctl" stop --now >/dev/null 2>&1; rm -rf "$work"' EXIT
  # Port 0: gwd takes a port no one holds (a port merely free now may be taken by another test).
  (cd "$work" && expect_rc 0 "$gwctl" start "$src/specs/demo.toml" --listen 127.0.0.1:0 --workers 1) || exit 1
}

case $case in
version)
  expect_rc 0 "$gwctl" --version
  contains "gwctl "
  ;;
usage)
  expect_rc 2 "$gwctl"
  expect_rc 2 "$gwctl" frobnicate
  expect_rc 2 "$gwctl" compile "$demo"          # -o is required
  expect_rc 2 "$gwctl" validate --format xml "$demo"
  for sub in validate compile inspect explain test diff; do
    expect_rc 0 "$gwctl" "$sub" --help
    contains "Usage"
  done
  expect_rc 0 "$gwctl" --help
  contains "Exit codes"
  # The footer lists each exit code 0-5 on a line of its own.
  codes=$(printf '%s\n' "$out" | sed -n 's/^  \([0-9]\)  .*/\1/p' | tr -d '\n')
  [[ $codes == 012345 ]] || { printf '%s\n' "$out" >&2; fail "exit-code lines: '$codes', expected 012345"; }
  ;;
validate-demo)
  expect_rc 0 "$gwctl" validate "$demo"
  contains "ok: 12 routes, 2 upstreams, 2 policies"
  ;;
validate-json)
  expect_rc 1 "$gwctl" validate --format json "$src/tests/data/invalid/unknown-reference.toml"
  printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["ok"] is False and d["errors"] == 2, d
codes = [x["code"] for x in d["diagnostics"]]
assert codes == ["ref.unknown-upstream", "ref.unknown-policy"], codes
first = d["diagnostics"][0]
assert first["line"] == 12 and first["column"] == 12 and first["hint"] == "did you mean \"pets\"?", first
' || fail "unexpected JSON"
  ;;
validate-sarif)
  expect_rc 0 "$gwctl" validate --format sarif "$src/tests/data/invalid/conflicts.toml"
  printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["version"] == "2.1.0"
run = d["runs"][0]
assert run["tool"]["driver"]["name"] == "gwctl"
res = run["results"]
assert len(res) == 2 and all(r["level"] == "warning" and r["ruleId"] == "route.shadowed" for r in res), res
region = res[0]["locations"][0]["physicalLocation"]["region"]
assert region["startLine"] == 12, region
' || fail "unexpected SARIF"
  ;;
werror)
  expect_rc 0 "$gwctl" validate "$src/tests/data/invalid/conflicts.toml"
  expect_rc 1 "$gwctl" validate --werror "$src/tests/data/invalid/conflicts.toml"
  contains "error[route.shadowed]"
  ;;
merge)
  cat > "$work/upstreams.toml" <<'TOML'
version = 1
[upstreams.pets]
endpoints = ["127.0.0.1:9001"]
TOML
  cat > "$work/routes.toml" <<'TOML'
version = 1
[[routes]]
name = "pets"
prefix = "/pets"
upstream = "pets"
TOML
  expect_rc 0 "$gwctl" validate "$work/upstreams.toml" "$work/routes.toml"
  contains "ok: 1 route, 1 upstream"
  expect_rc 1 "$gwctl" validate "$work/routes.toml"
  contains "unknown upstream \"pets\""
  expect_rc 1 "$gwctl" validate "$work/upstreams.toml" "$work/upstreams.toml" "$work/routes.toml"
  contains "is already defined at $work/upstreams.toml:2"
  ;;
unreadable)
  expect_rc 5 "$gwctl" validate "$work/nope.toml"
  contains "nope.toml: error[input.unreadable]: no such file"
  ;;
huge-spec)
  truncate -s 100M "$work/huge.toml"
  expect_rc 1 timeout 10 "$gwctl" validate "$work/huge.toml"
  contains "error[spec.too-large]"
  contains "larger than the 64MiB limit"
  ;;
compile-deterministic)
  expect_rc 0 "$gwctl" compile "$demo" -o "$work/a.gwrt"
  contains "compiled 12 routes"
  expect_rc 0 "$gwctl" compile "$demo" -o "$work/b.gwrt"
  cmp "$work/a.gwrt" "$work/b.gwrt" || fail "two compiles differ"
  SOURCE_DATE_EPOCH=1700000000 expect_rc 0 "$gwctl" compile "$demo" -o "$work/c.gwrt"
  cmp -s "$work/a.gwrt" "$work/c.gwrt" && fail "the timestamp was not recorded"
  expect_rc 0 "$gwctl" inspect "$work/c.gwrt"
  contains "timestamp 1700000000"
  ;;
compile-refuses-invalid)
  echo "old" > "$work/routes.gwrt"
  expect_rc 1 "$gwctl" compile "$src/tests/data/invalid/unknown-reference.toml" -o "$work/routes.gwrt"
  contains "not written"
  [[ $(cat "$work/routes.gwrt") == old ]] || fail "an invalid compile replaced the previous table"
  [[ $(ls "$work") == routes.gwrt ]] || fail "temporary files left behind: $(ls "$work")"
  ;;
inspect)
  expect_rc 0 "$gwctl" compile "$demo" -o "$work/demo.gwrt" --label demo
  expect_rc 0 "$gwctl" inspect "$work/demo.gwrt"
  contains "format    1.0"
  contains "label demo"
  contains "routes (12, in precedence order)"
  contains "hash on header:x-user-id"
  expect_rc 0 "$gwctl" inspect --json "$work/demo.gwrt"
  printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
names = [r["name"] for r in d["routes"]]
assert names[0] == "admin" and names[-1] == "legacy-cgi", names
assert names.index("list-pets") < names.index("get-pet") < names.index("accounts-api"), names
assert [r["precedence"] for r in d["routes"]] == list(range(1, 13))
assert len(d["table"]["sha256"]) == 64 and d["table"]["label"] == "demo"
assert {u["name"] for u in d["upstreams"]} == {"catalog", "accounts"}
' || fail "unexpected inspect JSON"
  ;;
damaged-tables)
  expect_rc 0 "$gwctl" compile "$demo" -o "$work/good.gwrt"
  size=$(stat -c %s "$work/good.gwrt")
  : > "$work/empty.gwrt"
  head -c $((size / 2)) "$work/good.gwrt" > "$work/truncated.gwrt"
  python3 - "$work/good.gwrt" "$work/flipped.gwrt" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) * 3 // 4] ^= 0x04
open(sys.argv[2], "wb").write(b)
PY
  printf 'GWRT\r\n\032\n' > "$work/magic-only.gwrt"
  # An empty file is read as an (empty) spec; the others are recognised as tables by their magic.
  expect_rc 1 "$gwctl" inspect "$work/empty.gwrt"
  contains "missing \`version = 1\`"
  expect_rc 1 "$gwctl" inspect "$work/truncated.gwrt"
  contains "error[table.truncated]"
  expect_rc 1 "$gwctl" inspect "$work/flipped.gwrt"
  contains "error[table.checksum_mismatch]"
  expect_rc 1 "$gwctl" explain "$work/flipped.gwrt" GET /pets
  contains "error[table.checksum_mismatch]"
  expect_rc 1 "$gwctl" inspect "$work/magic-only.gwrt"
  contains "error[table.truncated]"
  ;;
explain)
  expect_rc 0 "$gwctl" explain "$demo" GET http://shop.example/pets/7
  contains "decision  route \"get-pet\" -> upstream \"catalog\""
  contains "params    id=\"7\""
  contains "method GET is not one of PUT, DELETE, PATCH"
  expect_rc 0 "$gwctl" explain "$demo" POST /users/42/orders -H 'X-Api-Version: 2'
  contains "route \"orders-v2\""
  contains "forward   /v2/users/42/orders"
  contains "outranked by \"orders-v2\": more header/query conditions"
  expect_rc 1 "$gwctl" explain "$demo" DELETE /pets
  contains "405 Method Not Allowed  Allow: GET, HEAD, POST"
  expect_rc 1 "$gwctl" explain "$demo" GET /pets/7/
  contains "404 Not Found"
  contains "route \"get-pet\" matches \"/pets/7\" (trailing slashes are significant)"
  expect_rc 1 "$gwctl" explain "$demo" GET '/pets/%2e%2e/%2e%2e/etc'
  contains "400 Bad Request"
  expect_rc 0 "$gwctl" explain "$demo" GET /anything -H 'Host: admin.shop.example'
  contains "route \"admin\""
  expect_rc 2 "$gwctl" explain "$demo" GET /pets -H 'no-colon'
  expect_rc 0 "$gwctl" explain --json "$demo" GET /pets/7/photos/cat.tar.gz
  printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == 200 and d["route"]["name"] == "pet-photo", d
assert d["params"] == {"id": "7", "name": "cat", "ext": "tar.gz"}, d["params"]
' || fail "unexpected explain JSON"
  ;;
test-cases)
  expect_rc 0 "$gwctl" test "$demo" "$src/specs/demo.cases.toml"
  contains "0 failed; route coverage 100.0%"
  expect_rc 0 "$gwctl" compile "$demo" -o "$work/demo.gwrt"
  expect_rc 0 "$gwctl" test "$work/demo.gwrt" "$src/specs/demo.cases.toml"
  cat > "$work/bad.cases.toml" <<'TOML'
[[case]]
name = "wrong expectation"
url = "/pets/7"
expect = { route = "list-pets" }
TOML
  expect_rc 1 "$gwctl" test "$demo" "$work/bad.cases.toml"
  contains "FAIL  wrong expectation"
  contains "expected route \"list-pets\", got \"get-pet\""
  contains "route coverage 8.3%"
  cat > "$work/one.cases.toml" <<'TOML'
[[case]]
name = "pet"
url = "/pets/7"
expect = { route = "get-pet" }
TOML
  expect_rc 0 "$gwctl" test "$demo" "$work/one.cases.toml"
  expect_rc 1 "$gwctl" test "$demo" "$work/one.cases.toml" --fail-under 50
  contains "below --fail-under 50.0%"
  printf '[[case]]\nname = "x"\nurl = "/"\nexpect = { rout = "a" }\n' > "$work/typo.cases.toml"
  expect_rc 1 "$gwctl" test "$demo" "$work/typo.cases.toml"
  contains "did you mean \"route\"?"
  ;;
diff)
  expect_rc 0 "$gwctl" compile "$demo" -o "$work/demo.gwrt"
  expect_rc 0 "$gwctl" diff "$demo" "$work/demo.gwrt"
  contains "no differences"
  cp "$src/specs/partner-keys.txt" "$work/" # the demo's policy file, next to the copy
  sed -e 's/timeout = "2s"/timeout = "3s"/' -e '/^name = "legacy-cgi"/,$d' "$demo" > "$work/new.toml"
  printf '\n[[routes]]\nname = "search"\npath = "/search"\nupstream = "catalog"\n' >> "$work/new.toml"
  # The sed above cut the legacy-cgi route off after its name line; drop its dangling header.
  python3 - "$work/new.toml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace('[[routes]]\n\n[[routes]]\nname = "search"', '[[routes]]\nname = "search"')
open(p, "w").write(s)
PY
  expect_rc 0 "$gwctl" diff "$work/demo.gwrt" "$work/new.toml"
  contains "+ route search added"
  contains "- route legacy-cgi removed"
  contains "~ route health"
  contains "timeout: 2s -> 3s"
  expect_rc 1 "$gwctl" diff --exit-code "$work/demo.gwrt" "$work/new.toml"
  expect_rc 0 "$gwctl" diff --json "$demo" "$work/new.toml"
  printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
kinds = sorted((c["kind"], c["name"]) for c in d["changes"])
assert kinds == [("added", "search"), ("changed", "health"), ("removed", "legacy-cgi")], kinds
' || fail "unexpected diff JSON"
  ;;
completions-current)
  # The committed scripts are exactly what gwctl generates from its command tree.
  for pair in "bash:gwctl.bash" "zsh:_gwctl" "fish:gwctl.fish"; do
    shell=${pair%%:*} file=${pair#*:}
    "$gwctl" completion "$shell" > "$work/$file" || fail "gwctl completion $shell failed"
    diff -u "$src/completions/$file" "$work/$file" >&2 ||
      fail "completions/$file is out of date: run '$gwctl completion $shell > completions/$file'"
  done
  bash -n "$src/completions/gwctl.bash" || fail "bash syntax"
  zsh -n "$src/completions/_gwctl" || fail "zsh syntax"
  fish -n "$src/completions/gwctl.fish" || fail "fish syntax"
  ;;
completions-bash)
  complete_words() { # complete_words WORD...: the completions for the last word
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gwctl; echo "${COMPREPLY[*]}"' _ "$src/completions/gwctl.bash" "$@"
  }
  [[ $(complete_words gwctl re) == "reload" ]] || fail "subcommand"
  [[ $(complete_words gwctl validate --format "") == "text json sarif" ]] || fail "option values"
  [[ $(complete_words gwctl endpoint "") == "set" ]] || fail "nested subcommand"
  [[ $(complete_words gwctl endpoint set pool 10.0.0.1:80 "") == "ready drain maint" ]] || fail "positional choices"
  [[ $(complete_words gwctl stop --n) == "--now" ]] || fail "options"
  [[ $(complete_words gwctl --socket /tmp/x status --j) == "--json" ]] || fail "after a global option"
  ;;
keys)
  expect_rc 0 "$gwctl" key new partner --json
  read -r key line < <(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["consumer"] == "partner", d
print(d["key"], d["line"].replace(" ", "|"))') || fail "key new --json"
  line=${line//|/ }
  [[ ${#key} -ge 43 && $key =~ ^[A-Za-z0-9_-]+$ ]] || fail "a 32-byte base64url key: $key"
  [[ $line =~ ^partner\ sha256:[0-9a-f]{64}$ ]] || fail "keys-file line: $line"
  [[ $line != *"$key"* ]] || fail "the line must not hold the key"
  expect_rc 0 "$gwctl" key new partner
  [[ ${out%%$'\n'*} != "$key" ]] || fail "two keys were the same"
  # key hash gives the same line for the same key; --append builds a keys file.
  out=$(printf '%s\n' "$key" | "$gwctl" key hash partner) || fail "key hash"
  [[ $out == "$line" ]] || fail "key hash: $out, expected $line"
  printf '%s\n' "$key" | "$gwctl" key hash partner --append "$work/keys.txt" || fail "key hash --append"
  expect_rc 0 "$gwctl" key new ci --append "$work/keys.txt"
  [[ $(wc -l < "$work/keys.txt") == 2 ]] || fail "two lines appended"
  grep -q "^ci sha256:" "$work/keys.txt" || fail "ci's line"
  printf 'version = 1\n[upstreams.u]\nendpoints = ["127.0.0.1:9"]\n[policies.k]\nkind = "api_key"\nheader = "x-api-key"\nkeys_file = "keys.txt"\n[[routes]]\nname = "r"\nprefix = "/"\nupstream = "u"\npolicies = ["k"]\n' > "$work/keys.toml"
  expect_rc 0 "$gwctl" validate "$work/keys.toml"
  expect_rc 0 "$gwctl" compile "$work/keys.toml" -o "$work/keys.gwrt"
  ! grep -qF "$key" "$work/keys.gwrt" || fail "the plaintext key is in the table"
  echo "ci not-a-hash" >> "$work/keys.txt"
  expect_rc 1 "$gwctl" validate "$work/keys.toml"
  contains "keys.txt:3"
  # A file without a final newline (as editors may leave it): the new line is not glued on.
  printf '# partners' > "$work/unterminated.txt"
  expect_rc 0 "$gwctl" key new late --append "$work/unterminated.txt"
  printf 'k2' | "$gwctl" key hash later --append "$work/unterminated.txt" || fail "key hash --append"
  python3 - "$work/unterminated.txt" <<'PY' || fail "lines of a file that lacked its final newline"
import sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[0] == "# partners", lines
assert lines[1].startswith("late sha256:"), lines
assert lines[2].startswith("later sha256:"), lines
assert lines[3:] == [""], lines
PY
  # A bad consumer name is invalid input (1); a bad option value is a usage error (2).
  expect_rc 1 "$gwctl" key new "two words"
  contains "consumer \"two words\": expected 1 to 128 letters"
  printf 'k' | expect_rc 1 "$gwctl" key hash "bad name"
  expect_rc 2 "$gwctl" key new ci --bytes 8
  ;;
jwt-sign)
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.pem" 2>/dev/null || fail "openssl genpkey"
  openssl pkey -in "$work/rsa.pem" -pubout -out "$work/rsa.pub" || fail "openssl pkey"
  expect_rc 0 "$gwctl" jwt sign --key "$work/rsa.pem" --sub alice --aud api --kid k1 \
    --expires-in 1h --claims '{"scope":"read write"}'
  token=$out
  # The signature verifies with OpenSSL, and the parts say what was asked for.
  python3 - "$token" "$work" <<'PY' || fail "token contents"
import base64, json, sys, time
token, work = sys.argv[1], sys.argv[2]
h, p, s = token.split(".")
dec = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
head, claims = json.loads(dec(h)), json.loads(dec(p))
assert head == {"alg": "RS256", "kid": "k1", "typ": "JWT"}, head
assert claims["sub"] == "alice" and claims["aud"] == "api" and claims["scope"] == "read write", claims
assert 3500 <= claims["exp"] - time.time() <= 3700, claims
open(work + "/signed", "wb").write((h + "." + p).encode())
open(work + "/sig", "wb").write(dec(s))
PY
  openssl dgst -sha256 -verify "$work/rsa.pub" -signature "$work/sig" "$work/signed" >/dev/null ||
    fail "OpenSSL does not verify the RS256 signature"
  # HS256 from an environment variable, checked with Python's hmac.
  hs256_signed_with() { # TOKEN SECRET
    python3 -c '
import base64, hashlib, hmac, sys
h, p, s = sys.argv[1].split(".")
want = base64.urlsafe_b64encode(hmac.new(sys.argv[2].encode(), (h + "." + p).encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
assert s == want, (s, want)' "$1" "$2"
  }
  out=$(GW_TEST_SECRET=s3cret "$gwctl" jwt sign --alg HS256 --secret-env GW_TEST_SECRET) || fail "HS256"
  hs256_signed_with "$out" s3cret || fail "HS256 signature"
  # From a file, the editor's final newline is not part of the secret (as for gwd's secret_file).
  printf 's3cret\n' > "$work/hs.secret"
  expect_rc 0 "$gwctl" jwt sign --alg HS256 --secret-file "$work/hs.secret" --expires-in 1h
  hs256_signed_with "$out" s3cret || fail "HS256 signature with the secret file's newline dropped"
  : > "$work/empty.secret"
  expect_rc 1 "$gwctl" jwt sign --alg HS256 --secret-file "$work/empty.secret"
  contains "is empty"
  expect_rc 1 "$gwctl" jwt sign --alg HS256 --key "$work/rsa.pem"
  contains "cannot sign HS256"
  expect_rc 2 "$gwctl" jwt sign --alg RS256
  contains "exactly one of"
  expect_rc 2 "$gwctl" jwt sign --key "$work/rsa.pem" --claims '[1]'
  expect_rc 2 "$gwctl" jwt sign --alg none --key "$work/rsa.pem"
  # Without --alg, the key's own algorithm.
  split_token() { # TOKEN: writes $work/signed and $work/sig (DER for ECDSA), prints "ALG LIFETIME"
    python3 - "$1" "$work" <<'PY'
import base64, json, sys
token, work = sys.argv[1], sys.argv[2]
h, p, s = token.split(".")
dec = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
head, claims, sig = json.loads(dec(h)), json.loads(dec(p)), dec(s)
if head["alg"].startswith("ES"):  # JWS carries r || s; OpenSSL wants a DER SEQUENCE
    def integer(b):
        b = b.lstrip(b"\0") or b"\0"
        b = b"\0" + b if b[0] & 0x80 else b
        return b"\x02" + bytes([len(b)]) + b
    n = len(sig) // 2
    body = integer(sig[:n]) + integer(sig[n:])
    sig = b"\x30" + bytes([len(body)]) + body
open(work + "/signed", "wb").write((h + "." + p).encode())
open(work + "/sig", "wb").write(sig)
print(head["alg"], claims["exp"] - claims["iat"] if "exp" in claims else "none")
PY
  }
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/p256.pem" 2>/dev/null || fail "genpkey P-256"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/p384.pem" 2>/dev/null || fail "genpkey P-384"
  openssl genpkey -algorithm ED25519 -out "$work/ed.pem" 2>/dev/null || fail "genpkey Ed25519"
  for want in "rsa RS256 -sha256" "p256 ES256 -sha256" "p384 ES384 -sha384" "ed EdDSA"; do
    read -r k alg digest <<< "$want"
    openssl pkey -in "$work/$k.pem" -pubout -out "$work/$k.pub" || fail "openssl pkey $k"
    expect_rc 0 "$gwctl" jwt sign --key "$work/$k.pem" --sub alice --expires-in 1h
    [[ $(split_token "$out") == "$alg 3600" ]] || fail "$k key: $(split_token "$out"), expected $alg 3600"
    if [[ $alg == EdDSA ]]; then
      openssl pkeyutl -verify -pubin -inkey "$work/$k.pub" -rawin -in "$work/signed" -sigfile "$work/sig" >/dev/null ||
        fail "OpenSSL does not verify the EdDSA signature"
    else
      openssl dgst "$digest" -verify "$work/$k.pub" -signature "$work/sig" "$work/signed" >/dev/null ||
        fail "OpenSSL does not verify the $alg signature"
    fi
  done
  out=$(GW_TEST_SECRET=s3cret "$gwctl" jwt sign --secret-env GW_TEST_SECRET --expires-in 5m) ||
    fail "HS256 by default"
  [[ $(split_token "$out") == "HS256 300" ]] || fail "secret: $(split_token "$out")"
  hs256_signed_with "$out" s3cret || fail "default HS256 signature"
  # A token without exp, which gwd refuses by default, comes with a warning unless meant.
  out=$("$gwctl" jwt sign --key "$work/p256.pem" 2>"$work/stderr") || fail "no --expires-in"
  [[ $(split_token "$out") == "ES256 none" ]] || fail "no exp without --expires-in"
  grep -q "warning: the token has no exp, so gwd refuses it unless the policy sets require_exp = false" \
    "$work/stderr" || fail "no warning about the missing exp: $(cat "$work/stderr")"
  out=$("$gwctl" jwt sign --key "$work/p256.pem" --no-exp 2>"$work/stderr") || fail "--no-exp"
  [[ $(split_token "$out") == "ES256 none" ]] || fail "--no-exp"
  [[ ! -s $work/stderr ]] || fail "--no-exp still warns: $(cat "$work/stderr")"
  out=$("$gwctl" jwt sign --key "$work/p256.pem" --claims '{"iat": 1000, "exp": 1060}' 2>"$work/stderr") ||
    fail "exp in --claims"
  [[ $(split_token "$out") == "ES256 60" && ! -s $work/stderr ]] || fail "an exp in --claims stands, unwarned"
  expect_rc 2 "$gwctl" jwt sign --key "$work/p256.pem" --no-exp --expires-in 1h
  expect_rc 2 "$gwctl" jwt sign --key "$work/p256.pem" --no-exp --claims '{"exp": 1}'
  expect_rc 1 "$gwctl" jwt sign --key "$work/p256.pem" --alg ES384
  contains "cannot sign ES384"
  ;;
one-verdict)
  # What validate refuses, every command that loads specs refuses, with the same diagnostics.
  cat > "$work/dup.toml" <<'TOML'
version = 1
[upstreams.u]
endpoints = ["127.0.0.1:9"]
[[routes]]
name = "a"
template = "/pets/{id}"
upstream = "u"
[[routes]]
name = "b"
template = "/pets/{petId}"
upstream = "u"
TOML
  printf '[[case]]\nname = "pet"\nurl = "/pets/1"\nexpect = { route = "a" }\n' > "$work/dup.cases.toml"
  expect_rc 1 "$gwctl" validate --color never "$work/dup.toml"
  contains "error[route.duplicate]"
  want=$(printf '%s\n' "$out" | grep -F ': error[')
  check_refused() { # CMD...: exits 1 and prints validate's error lines
    expect_rc 1 "$gwctl" --color never "$@"
    got=$(printf '%s\n' "$out" | grep -F ': error[')
    [[ $got == "$want" ]] || { printf '%s\n' "$out" >&2; fail "'$*' did not refuse as validate does"; }
  }
  check_refused compile "$work/dup.toml" -o "$work/dup.gwrt"
  [[ ! -e $work/dup.gwrt ]] || fail "compile wrote a table"
  check_refused inspect "$work/dup.toml"
  check_refused explain "$work/dup.toml" GET /pets/1
  check_refused test "$work/dup.toml" "$work/dup.cases.toml"
  check_refused diff "$work/dup.toml" "$demo"
  check_refused diff "$demo" "$work/dup.toml"
  # Refused locally, before any gwd is asked (none answers on this socket).
  check_refused --socket "$work/gwd.sock" reload "$work/dup.toml"
  check_refused --socket "$work/gwd.sock" start "$work/dup.toml"
  ;;
golden-update)
  # An environment variable never turns a golden mismatch into a pass; only --update rewrites.
  mkdir "$work/golden"
  printf 'version = 1\n[[routes]]\nname = "r"\nprefix = "/"\nupstream = "nowhere"\n' > "$work/golden/bad.toml"
  printf 'stale\n' > "$work/golden/bad.expected"
  GW_UPDATE_GOLDEN=1 expect_rc 1 "$src/tests/cli/golden.sh" "$gwctl" "$work/golden" bad.toml
  contains "golden mismatch"
  [[ $(cat "$work/golden/bad.expected") == stale ]] || fail "the environment rewrote the expected file"
  expect_rc 0 "$src/tests/cli/golden.sh" --update "$gwctl" "$work/golden"
  contains "updated $work/golden/bad.expected"
  expect_rc 0 "$src/tests/cli/golden.sh" "$gwctl" "$work/golden" bad.toml
  grep -q 'error\[ref.unknown-upstream\]' "$work/golden/bad.expected" || fail "updated content"
  grep -q '^exit: 1$' "$work/golden/bad.expected" || fail "updated exit code"
  ;;
help-readable)
  # Every command's help names values by what they are, never by CLI11's internals.
  for cmd in "" validate compile inspect explain test diff "key new" "key hash" "jwt sign" \
    "openapi import" start stop reload rollback status routes upstreams stats "endpoint set" \
    completion; do
    # shellcheck disable=SC2086 # the command path is words
    expect_rc 0 "$gwctl" $cmd --help
    for internal in TEXT INT UINT FLOAT ENUM REQUIRED "(2x)" " x 2" "->" ":{" "in [0"; do
      [[ $out != *"$internal"* ]] || { printf '%s\n' "$out" >&2; fail "'gwctl $cmd --help' shows '$internal'"; }
    done
  done
  expect_rc 0 "$gwctl" explain --help
  contains "Usage: gwctl explain [OPTIONS] INPUT METHOD URL"
  contains "-H,--header 'NAME: VALUE' (repeatable)"
  contains "--with SPEC (repeatable)"
  expect_rc 0 "$gwctl" --help
  contains "--color auto|always|never"
  contains "--socket PATH"
  expect_rc 0 "$gwctl" compile --help
  contains "-o,--output TABLE (required)"
  expect_rc 0 "$gwctl" test --help
  contains "--fail-under PERCENT"
  expect_rc 0 "$gwctl" jwt sign --help
  contains "--alg HS256|HS384|HS512|RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|EdDSA"
  contains "--expires-in DURATION"
  contains "without it gwctl warns"
  ;;
header-then-positionals)
  # -H takes one value per use, so the positionals after it stay positionals.
  expect_rc 0 "$gwctl" explain "$demo" -H 'X-Api-Version: 2' POST /users/42/orders
  contains "route \"orders-v2\""
  expect_rc 0 "$gwctl" explain -H 'X-Api-Version: 2' "$demo" -H 'X-User-Id: 7' POST /users/42/orders
  contains "route \"orders-v2\""
  printf 'version = 1\n[[routes]]\nname = "extra"\npath = "/extra"\nupstream = "catalog"\n' > "$work/extra.toml"
  expect_rc 0 "$gwctl" explain --with "$work/extra.toml" "$demo" GET /extra --json
  contains '"name": "extra"'
  expect_rc 0 "$gwctl" explain "$demo" --with "$work/extra.toml" GET /extra
  contains 'route "extra"'
  ;;
compile-missing-dir)
  expect_rc 5 "$gwctl" compile "$demo" -o "$work/no/such/dir/routes.gwrt"
  contains "cannot write $work/no/such/dir/routes.gwrt: directory $work/no/such/dir does not exist"
  lacks ".tmp."
  ;;
compile-portable)
  # The table depends on the spec's content, not on how its path is spelled or where from.
  (cd "$src" && "$gwctl" compile specs/demo.toml -o "$work/relative.gwrt") >/dev/null || fail "relative"
  (cd "$work" && "$gwctl" compile "$src/specs/demo.toml" -o absolute.gwrt) >/dev/null || fail "absolute"
  (cd "$src/specs" && "$gwctl" compile ./demo.toml -o "$work/dot.gwrt") >/dev/null || fail "./"
  (cd "$src/tests" && "$gwctl" compile ../specs/../specs/demo.toml -o "$work/dotdot.gwrt") >/dev/null || fail "../"
  for t in absolute dot dotdot; do
    cmp "$work/relative.gwrt" "$work/$t.gwrt" || fail "the $t compile differs from the relative one"
  done
  expect_rc 0 "$gwctl" inspect "$work/relative.gwrt"
  contains "source    demo.toml  sha256 $(sha256sum "$demo" | cut -c1-16)"
  lacks "specs/demo.toml" # the table records no path it was given
  (cd "$src" && expect_rc 0 "$gwctl" inspect specs/demo.toml
    contains "source    demo.toml  sha256"
    contains "(read from specs/demo.toml)"
    contains "  specs/demo.toml:") || exit 1
  # Two sources of the same name are told apart by their directories.
  mkdir -p "$work/a" "$work/b"
  printf 'version = 1\n[upstreams.u]\nendpoints = ["127.0.0.1:9"]\n' > "$work/a/part.toml"
  printf 'version = 1\n[[routes]]\nname = "r"\nprefix = "/"\nupstream = "u"\n' > "$work/b/part.toml"
  expect_rc 0 "$gwctl" compile "$work/a/part.toml" "$work/b/part.toml" -o "$work/parts.gwrt"
  expect_rc 0 "$gwctl" inspect --json "$work/parts.gwrt"
  printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [s["name"] for s in d["table"]["sources"]] == ["a/part.toml", "b/part.toml"], d["table"]["sources"]
' || fail "source names of two part.toml files"
  ;;
inspect-conditions)
  cat > "$work/cond.toml" <<'TOML'
version = 1
[upstreams.u]
endpoints = ["127.0.0.1:9"]
[[routes]]
name = "v2"
template = "/users/{id}"
headers = [{ name = "x-api-version", exact = "2" }]
query = [{ name = "debug", present = true, invert = true }]
upstream = "u"
[[routes]]
name = "cgi"
regex = "/cgi-bin/[a-z]+\\.cgi"
priority = 3
upstream = "u"
[[routes]]
name = "legacy"
regex = "/old/.*"
upstream = "u"
TOML
  expect_rc 0 "$gwctl" compile "$work/cond.toml" -o "$work/cond.gwrt"
  expect_rc 0 "$gwctl" inspect "$work/cond.gwrt"
  contains "CONDITIONS"
  contains 'header x-api-version exact "2"; query !debug present'
  contains 'regex /cgi-bin/[a-z]+\.cgi (priority 3)'
  contains 'regex /old/.* (priority 0)'
  ;;
diff-declaration-order)
  route() { printf '[[routes]]\nname = "%s"\ntemplate = "%s"\nupstream = "u"\n' "$1" "$2"; }
  head='version = 1\n[upstreams.u]\nendpoints = ["127.0.0.1:9"]\n'
  { printf "$head"; route by-owner '/a/{x}'; route by-kind '/{y}/b'; } > "$work/old.toml"
  { printf "$head"; route by-kind '/{y}/b'; route by-owner '/a/{x}'; } > "$work/new.toml"
  expect_rc 0 "$gwctl" diff "$work/old.toml" "$work/new.toml"
  contains "^ route by-kind precedence"
  contains "now takes precedence over \"by-owner\" (equal precedence: it is declared first now)"
  contains "e.g. GET /a/b went to \"by-owner\", now goes to \"by-kind\""
  lacks "no differences"
  expect_rc 1 "$gwctl" diff --exit-code "$work/old.toml" "$work/new.toml"
  expect_rc 0 "$gwctl" diff --json "$work/old.toml" "$work/new.toml"
  printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
[c] = d["changes"]
assert (c["kind"], c["name"], c["other"], c["example"]) == ("precedence", "by-kind", "by-owner", "GET /a/b"), c
' || fail "unexpected diff JSON"
  ;;
routes-live)
  # gwctl routes (the running table) shows conditions and regex priorities, as inspect does.
  start_demo_gwd
  expect_rc 0 "$gwctl" routes
  contains "CONDITIONS"
  contains 'header x-api-version exact "2"'
  contains 'regex /cgi-bin/[a-z]+\.cgi (priority 10)'
  expect_rc 0 "$gwctl" stop
  ;;
reload-same-spec)
  # Reloading the spec gwd serves, spelled differently and from another directory, is a no-op.
  start_demo_gwd
  (cd "$src" && expect_rc 0 "$gwctl" reload specs/demo.toml && contains "unchanged: generation 1") || exit 1
  (cd "$src/specs" && expect_rc 0 "$gwctl" reload ./demo.toml && contains "unchanged: generation 1") || exit 1
  expect_rc 0 "$gwctl" stop
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "ok [$case]"
