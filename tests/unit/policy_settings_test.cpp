#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gw/core/sha256.hpp"
#include "gw/policy/kinds.hpp"
#include "gw/policy/registry.hpp"
#include "gw/policy/settings.hpp"
#include "support/spec_builder.hpp"
#include "support/temp_dir.hpp"
#include "support/test_keys.hpp"

using namespace gw::policy;
using gwtest::build_spec;
using gwtest::kPrelude;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

using gwtest::TempDir;

/// compile() called directly, without a spec: locations are the policy table's.
struct Compiled {
  gw::Diagnostics diags;
  std::optional<json> canonical;

  const gw::Diagnostic* find(const std::string& code) const {
    return gwtest::find_diagnostic(diags, code);
  }
  std::string dump() const { return gwtest::dump_diagnostics(diags); }
};

const KindInfo& row(std::string_view kind) {
  const KindInfo* k = find_kind(kind);
  REQUIRE(k != nullptr);
  return *k;
}

Compiled compile_settings(std::string_view kind, const json& settings, const fs::path& base = {}) {
  Compiled c;
  Context ctx;
  ctx.policy = "p";
  ctx.loc = gw::SourceLoc{"inline.toml", 4, 1};
  ctx.base_dir = base;
  c.canonical = row(kind).compile(settings, ctx, c.diags);
  return c;
}

/// compile() then parse(): the typed settings gwd would run with.
template <class T>
T typed(std::string_view kind, const json& settings, const fs::path& base = {}) {
  auto c = compile_settings(kind, settings, base);
  INFO(c.dump());
  REQUIRE(c.canonical);
  auto s = parse<T>(c.canonical->dump());
  INFO((s ? std::string() : s.error().message));
  REQUIRE(s);
  return *s;
}

/// Whether gwd would build a filter from `canonical` (a table's settings, maybe edited by hand).
bool builds(std::string_view kind, const std::string& canonical) {
  static BucketRegistry buckets;
  Registry reg;
  reg.buckets = &buckets;
  BuildContext ctx;
  ctx.policy = "p";
  ctx.settings = canonical;
  ctx.registry = &reg;
  return row(kind).build(ctx).has_value();
}

/// The first error's message, after checking the code and that it names `key`.
std::string expect_error(std::string_view kind, const json& settings, const std::string& code,
                         const std::string& key) {
  auto c = compile_settings(kind, settings);
  INFO(settings.dump() << "\n" << c.dump());
  CHECK_FALSE(c.canonical);
  const auto* d = c.find(code);
  REQUIRE(d != nullptr);
  CHECK(d->severity == gw::Severity::error);
  CHECK(d->message.find("policy \"p\"") != std::string::npos);
  if (!key.empty()) CHECK(d->message.find(key) != std::string::npos);
  // The factory refuses the same settings (a table edited by hand cannot smuggle them into gwd).
  CHECK_FALSE(builds(kind, settings.dump()));
  return d->message;
}

std::string hex_of(std::string_view key) {
  return gw::to_hex(gw::sha256(key));
}

const gw::Diagnostic* find_in(const gwtest::Built& b, const std::string& code,
                              const std::string& text = "") {
  for (const auto& d : b.diags)
    if (d.code == code && d.message.find(text) != std::string::npos) return &d;
  return nullptr;
}

std::vector<std::string> route_policy_names(const gwtest::Built& b, const std::string& route) {
  std::vector<std::string> out;
  const auto* r = b.config->find_route(route);
  REQUIRE(r != nullptr);
  for (auto idx : r->policies)
    out.push_back(b.config->policies[idx].name);
  return out;
}

} // namespace

// ---- kinds and phases

TEST_CASE("policy kinds are known by name and run in a fixed phase order", "[policy]") {
  for (const auto* k : kinds()) {
    const KindInfo* found = find_kind(k->name);
    REQUIRE(found);
    CHECK(found == k);
  }
  CHECK_FALSE(find_kind("ratelimit"));
  CHECK_FALSE(find_kind("API_KEY"));
  auto phase = [](std::string_view kind) { return row(kind).phase; };
  CHECK(phase("cors") < phase("jwt"));
  CHECK(phase("any_of") < phase("access"));
  CHECK(phase("access") < phase("rate_limit"));
  CHECK(phase("rate_limit") < phase("headers"));
  CHECK(phase("rate_limit") < Phase::plugin);
  CHECK(Phase::plugin < phase("headers"));
  CHECK(row("api_key").authenticates);
  CHECK(row("basic").authenticates);
  CHECK(row("any_of").authenticates);
  CHECK_FALSE(row("access").authenticates);
  CHECK_FALSE(row("cors").authenticates);
}

// ---- every kind: unknown settings

TEST_CASE("an unknown setting is an error with a did-you-mean hint", "[policy]") {
  SECTION("close to a known setting") {
    auto c = compile_settings("api_key", {{"header", "x-api-key"}, {"keys_fil", "k.txt"}});
    INFO(c.dump());
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("spec.unknown-key");
    REQUIRE(d);
    CHECK(d->message == "policy \"p\": unknown setting \"keys_fil\" for kind \"api_key\"");
    CHECK(d->hint == "did you mean \"keys_file\"?");
    CHECK(d->pointer == "/keys_fil");
  }
  SECTION("nothing close: the hint lists what the kind takes") {
    auto c = compile_settings("cors", {{"origins", "*"}, {"zzzzzzzz", true}});
    const auto* d = c.find("spec.unknown-key");
    REQUIRE(d);
    CHECK(d->hint.starts_with("cors takes: "));
    CHECK(d->hint.find("origins") != std::string::npos);
    CHECK(d->hint.find("max_age") != std::string::npos);
  }
  SECTION("each kind rejects another kind's settings") {
    CHECK(compile_settings("rate_limit", {{"rate", "1/s"}, {"origins", "*"}})
              .find("spec.unknown-key"));
    CHECK(compile_settings("basic", {{"users", json::array()}, {"header", "x"}})
              .find("spec.unknown-key"));
    CHECK(compile_settings("access", {{"scopes", "a"}, {"keys", json::array()}})
              .find("spec.unknown-key"));
  }
}

TEST_CASE("a spec's policy errors carry the line and column of the offending value", "[policy]") {
  auto b = build_spec(std::string(kPrelude) +                     // lines 1-3
                      "[policies.partners]\n"                     // 4
                      "kind = \"api_key\"\n"                      // 5
                      "header = \"x-api-key\"\n"                  // 6
                      "keys_fil = \"keys.txt\"\n"                 // 7
                      "[policies.limit]\n"                        // 8
                      "kind = \"rate_limit\"\n"                   // 9
                      "rate = \"abc\"\n"                          // 10
                      "[policies.tokens]\n"                       // 11
                      "kind = \"jwt\"\n"                          // 12
                      "jwks_url = \"https://idp.example/jwks\"\n" // 13
                      "algorithms = [\"RS256\", \"none\"]\n");    // 14
  INFO(b.dump());
  CHECK_FALSE(b.config);
  const auto* unknown = find_in(b, "spec.unknown-key", "keys_fil");
  REQUIRE(unknown);
  CHECK(unknown->to_string() ==
        "test.toml:7:12: error[spec.unknown-key]: policy \"partners\": unknown setting "
        "\"keys_fil\" for kind \"api_key\"");
  CHECK(unknown->hint == "did you mean \"keys_file\"?");

  const auto* rate = find_in(b, "policy.invalid", "rate \"abc\"");
  REQUIRE(rate);
  CHECK(rate->file == "test.toml");
  CHECK(rate->line == 10);
  CHECK(rate->col == 8);

  const auto* none = find_in(b, "policy.invalid", "\"none\"");
  REQUIRE(none);
  CHECK(none->line == 14);
  CHECK(none->col == 14);
  CHECK(none->message.find("unsigned tokens are never accepted") != std::string::npos);
}

// ---- api_key

TEST_CASE("api_key: inline keys become canonical digests and typed settings", "[policy]") {
  const json in = {
      {"header", "X-Api-Key"},
      {"query", json::array({"api_key", "key"})},
      {"keys", json::array({json{{"consumer", "acme"}, {"sha256", "sha256:" + hex_of("k-acme")}},
                            json{{"consumer", "globex"}, {"sha256", hex_of("k-globex")}}})},
      {"consumer_header", "X-Who"},
      {"strip", false}};
  auto c = compile_settings("api_key", in);
  INFO(c.dump());
  REQUIRE(c.canonical);
  CHECK(c.diags.empty());
  // Canonical: digests without the "sha256:" prefix, sorted by digest.
  const auto& keys = (*c.canonical)["keys"];
  REQUIRE(keys.size() == 2);
  for (const auto& k : keys) {
    CHECK(k.size() == 2);
    CHECK(k["sha256"].get<std::string>() == hex_of("k-" + k["consumer"].get<std::string>()));
  }
  CHECK(keys[0]["sha256"].get<std::string>() < keys[1]["sha256"].get<std::string>());

  auto a = typed<ApiKey>("api_key", in);
  REQUIRE(a.from.size() == 3);
  CHECK(a.from[0] == Credential{Credential::In::header, "x-api-key"});
  CHECK(a.from[1] == Credential{Credential::In::query, "api_key"});
  CHECK(a.from[2] == Credential{Credential::In::query, "key"});
  REQUIRE(a.keys.size() == 2);
  CHECK(std::is_sorted(a.keys.begin(), a.keys.end()));
  const auto acme = std::find_if(a.keys.begin(), a.keys.end(),
                                 [](const auto& kv) { return kv.second == "acme"; });
  REQUIRE(acme != a.keys.end());
  CHECK(acme->first == gw::sha256("k-acme"));
  CHECK_FALSE(a.strip);
  CHECK(a.consumer_header == "x-who");
  CHECK(a.realm == "gw");
}

TEST_CASE("key_file_line is what a keys file holds for a key", "[policy]") {
  CHECK(key_file_line("acme", "abc") ==
        "acme sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("api_key: keys_file is read relative to the spec's directory and embedded", "[policy]") {
  TempDir dir;
  dir.write("keys/partners.txt", "# partner keys\n" + key_file_line("acme", "k-acme") +
                                     "\n\n  \tglobex   sha256:" + hex_of("k-globex") + " \r\n");
  auto b = build_spec(std::string(kPrelude) +
                          "[policies.partners]\nkind = \"api_key\"\nheader = \"x-api-key\"\n"
                          "keys_file = \"keys/partners.txt\"\n",
                      false, dir.spec_name());
  INFO(b.dump());
  REQUIRE(b.config);
  REQUIRE(b.config->policies.size() == 1);
  const auto cfg = json::parse(b.config->policies[0].config);
  CHECK_FALSE(cfg.contains("keys_file")); // the table does not depend on the file any more
  REQUIRE(cfg["keys"].size() == 2);
  std::vector<std::string> consumers;
  for (const auto& k : cfg["keys"]) {
    consumers.push_back(k["consumer"].get<std::string>());
    CHECK(k["sha256"].get<std::string>() == hex_of("k-" + consumers.back()));
  }
  std::sort(consumers.begin(), consumers.end());
  CHECK(consumers == std::vector<std::string>{"acme", "globex"});

  SECTION("a missing file is unreadable input at the keys_file value") {
    auto m =
        build_spec(std::string(kPrelude) + "[policies.partners]\nkind = \"api_key\"\n"
                                           "header = \"x-api-key\"\nkeys_file = \"nope.txt\"\n",
                   false, dir.spec_name());
    const auto* d = find_in(m, "input.unreadable");
    REQUIRE(d);
    CHECK(d->line == 7);
    CHECK(d->message.find("keys_file") != std::string::npos);
  }
}

TEST_CASE("api_key: a bad keys-file line is reported with the file's line", "[policy]") {
  TempDir dir;
  const auto file = dir.write("keys.txt", "# comment\n" + key_file_line("acme", "k1") + "\n" +
                                              "bob sha256:1234\n" + "carol\n" +
                                              "dave md5:" + hex_of("k4") + "\n");
  auto b = build_spec(std::string(kPrelude) + "[policies.partners]\nkind = \"api_key\"\n"
                                              "header = \"x-api-key\"\nkeys_file = \"keys.txt\"\n",
                      false, dir.spec_name());
  INFO(b.dump());
  CHECK_FALSE(b.config);
  for (const int line : {3, 4, 5}) {
    const auto* d = find_in(b, "policy.invalid", file.string() + ":" + std::to_string(line) + ":");
    REQUIRE(d);
    CHECK(d->message.find("CONSUMER sha256:HEX") != std::string::npos);
    // The diagnostic itself points at the keys_file value in the spec.
    CHECK(d->line == 7);
    CHECK(d->col == 13);
  }
  CHECK_FALSE(find_in(b, "policy.invalid", file.string() + ":2:"));
  CHECK(b.diags.error_count() == 3);
}

TEST_CASE("api_key: bad settings are refused", "[policy]") {
  const json key = json::array({json{{"consumer", "acme"}, {"sha256", hex_of("k")}}});
  expect_error("api_key", {{"keys", key}}, "policy.invalid", "header, query or cookie");
  expect_error("api_key", {{"header", "x api key"}, {"keys", key}}, "policy.invalid",
               "\"x api key\"");
  expect_error("api_key", {{"header", 5}, {"keys", key}}, "policy.invalid",
               "header must be a string");
  expect_error("api_key", {{"header", "x-k"}, {"keys", "abc"}}, "policy.invalid",
               "keys must be an array");
  expect_error("api_key", {{"header", "x-k"}, {"keys", json::array({json{{"consumer", "a"}}})}},
               "policy.invalid", "keys[1]");
  expect_error(
      "api_key",
      {{"header", "x-k"}, {"keys", json::array({json{{"consumer", "a"}, {"sha256", "abcd"}}})}},
      "policy.invalid", "64 hex digits");
  expect_error("api_key",
               {{"header", "x-k"},
                {"keys", json::array({json{{"consumer", "a"}, {"sha256", hex_of("same")}},
                                      json{{"consumer", "b"}, {"sha256", hex_of("same")}}})}},
               "policy.invalid", "the same key is listed for \"a\" and \"b\"");
  expect_error("api_key", {{"header", "x-k"}, {"keys", key}, {"strip", "yes"}}, "policy.invalid",
               "strip must be true or false");
}

TEST_CASE("consumer and user names must be fit for the consumer header", "[policy]") {
  // They are sent upstream as x-consumer: a control character would break the request head.
  expect_error(
      "api_key",
      {{"header", "x-k"},
       {"keys", json::array({json{{"consumer", "acme\r\nx-admin: 1"}, {"sha256", hex_of("k")}}})}},
      "policy.invalid", "consumer");
  expect_error("basic", {{"users", json::array({"al\x01ice:$6$x$y"})}}, "policy.invalid", "user");
  TempDir dir;
  dir.write("keys.txt", "ac\x7fme sha256:" + hex_of("k") + "\n");
  auto c = compile_settings("api_key", {{"header", "x-k"}, {"keys_file", "keys.txt"}}, dir.path());
  REQUIRE(c.find("policy.invalid"));
  CHECK(c.find("policy.invalid")->message.find("keys.txt:1") != std::string::npos);
}

TEST_CASE("identity and credential headers cannot be the proxy's own headers", "[policy]") {
  // A consumer name in Content-Length or Transfer-Encoding would corrupt the upstream request.
  const json key = json::array({json{{"consumer", "acme"}, {"sha256", hex_of("k")}}});
  expect_error("api_key", {{"header", "x-k"}, {"keys", key}, {"consumer_header", "Content-Length"}},
               "policy.invalid", "\"Content-Length\" is managed by the proxy");
  expect_error("basic", {{"users", json::array()}, {"consumer_header", "transfer-encoding"}},
               "policy.invalid", "managed by the proxy");
  expect_error("jwt", {{"jwks_url", "https://idp/jwks"}, {"forward_claims", {{"sub", "Host"}}}},
               "policy.invalid", "\"Host\" is managed by the proxy");
  expect_error("jwt", {{"jwks_url", "https://idp/jwks"}, {"consumer_header", "connection"}},
               "policy.invalid", "managed by the proxy");
  // Stripping Host would break the request; reading it is harmless.
  expect_error(
      "api_key", {{"header", "Host"}, {"keys", key}}, "policy.invalid",
      "\"Host\" is managed by the proxy and cannot be stripped; set strip = false to read it");
  CHECK(typed<ApiKey>("api_key", {{"header", "Host"}, {"keys", key}, {"strip", false}}).from ==
        std::vector<Credential>{{Credential::In::header, "host"}});
  CHECK(typed<ApiKey>("api_key", {{"header", "x-k"}, {"keys", key}, {"consumer_header", ""}})
            .consumer_header.empty());
}

TEST_CASE("api_key without keys compiles with a policy.no-keys warning", "[policy]") {
  auto c = compile_settings("api_key", {{"header", "x-api-key"}});
  INFO(c.dump());
  REQUIRE(c.canonical);
  CHECK((*c.canonical)["keys"] == json::array());
  const auto* d = c.find("policy.no-keys");
  REQUIRE(d);
  CHECK(d->severity == gw::Severity::warning);
  CHECK(d->message.find("refuses every request") != std::string::npos);
  CHECK(c.diags.error_count() == 0);

  SECTION("through a spec, the config is still built") {
    auto b = build_spec(std::string(kPrelude) +
                        "[policies.k]\nkind = \"api_key\"\nheader = \"x-api-key\"\n");
    CHECK(b.config);
    const auto* w = b.find("policy.no-keys");
    REQUIRE(w);
    CHECK(w->line == 4);
  }
}

TEST_CASE("an empty keys file or list warns policy.no-keys at that key", "[policy]") {
  TempDir dir;
  dir.write("keys.txt", "# nobody yet\n");
  auto file =
      compile_settings("api_key", {{"header", "x-api-key"}, {"keys_file", "keys.txt"}}, dir.path());
  REQUIRE(file.find("policy.no-keys"));
  CHECK(file.find("policy.no-keys")->pointer == "/keys_file");
  CHECK(file.find("policy.no-keys")->message.find("lists no keys") != std::string::npos);
  auto list = compile_settings("api_key", {{"header", "x-api-key"}, {"keys", json::array()}});
  REQUIRE(list.find("policy.no-keys"));
  CHECK(list.find("policy.no-keys")->pointer == "/keys");
  auto users = compile_settings("basic", {{"users", json::array()}});
  REQUIRE(users.find("policy.no-keys"));
  CHECK(users.find("policy.no-keys")->message.find("lists no users") != std::string::npos);
}

// ---- basic

TEST_CASE("basic: users and htpasswd files are embedded with their hashes", "[policy]") {
  // Hash strings only need the right form here; chain tests check real passwords.
  const std::string bcrypt = "$2y$05$abcdefghijklmnopqrstuu5Xl8jSSzSFqZ3QCGj3yO5uGOOo5yFwG";
  const std::string sha512 = "$6$rounds=1000$saltsalt$xyz";
  TempDir dir;
  dir.write("htpasswd", "# users\nzed:" + sha512 + "\r\n\nyuri:$y$j9T$abc$def\n");
  auto a = typed<Basic>(
      "basic",
      {{"users", json::array({"bob:" + bcrypt})}, {"htpasswd_file", "htpasswd"}, {"realm", "shop"}},
      dir.path());
  REQUIRE(a.users.size() == 3);
  CHECK(a.users[0] == std::pair<std::string, std::string>{"bob", bcrypt});
  CHECK(a.users[1] == std::pair<std::string, std::string>{"yuri", "$y$j9T$abc$def"});
  CHECK(a.users[2] == std::pair<std::string, std::string>{"zed", sha512});
  CHECK(a.realm == "shop");
  CHECK(a.strip);
  CHECK(a.consumer_header == "x-consumer");

  auto c = compile_settings("basic", {{"htpasswd_file", "htpasswd"}}, dir.path());
  REQUIRE(c.canonical);
  CHECK_FALSE(c.canonical->contains("htpasswd_file"));
  CHECK((*c.canonical)["users"] == json::array({"yuri:$y$j9T$abc$def", "zed:" + sha512}));
}

TEST_CASE("basic: weak or unsupported hashes are refused", "[policy]") {
  const auto msg =
      expect_error("basic", {{"users", json::array({"alice:$apr1$abc$defdefdefdefdefdefdef"})}},
                   "policy.invalid", "\"alice\"");
  CHECK(msg.find("is not bcrypt, SHA-crypt or yescrypt") != std::string::npos);
  expect_error("basic", {{"users", json::array({"alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="})}},
               "policy.invalid", "\"alice\"");
  expect_error("basic", {{"users", json::array({"alice:plaintext"})}}, "policy.invalid",
               "\"alice\"");
  expect_error("basic", {{"users", json::array({"alice"})}}, "policy.invalid",
               "expected \"user:hash\"");
  expect_error("basic", {{"users", json::array({"a:$6$x$y", "a:$6$x$z"})}}, "policy.invalid",
               "user \"a\" is listed twice");

  SECTION("in an htpasswd file, with the file's line") {
    TempDir dir;
    const auto file =
        dir.write("htpasswd", "bob:$2y$05$abc\nalice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n");
    auto b = build_spec(std::string(kPrelude) +
                            "[policies.staff]\nkind = \"basic\"\nhtpasswd_file = \"htpasswd\"\n",
                        false, dir.spec_name());
    INFO(b.dump());
    CHECK_FALSE(b.config);
    const auto* d = find_in(b, "policy.invalid", file.string() + ":2:");
    REQUIRE(d);
    CHECK(d->message.find("\"alice\"") != std::string::npos);
    CHECK(d->line == 6);
    CHECK(b.diags.error_count() == 1);
  }
}

TEST_CASE("basic without users warns policy.no-keys", "[policy]") {
  auto c = compile_settings("basic", json::object());
  REQUIRE(c.canonical);
  REQUIRE(c.find("policy.no-keys"));
  CHECK(c.find("policy.no-keys")->severity == gw::Severity::warning);
}

// ---- jwt

TEST_CASE("jwt: algorithms are checked against the keys the policy has", "[policy]") {
  const json url = {{"jwks_url", "https://idp.example/jwks.json"}};
  SECTION("unknown algorithm, with the list as a hint") {
    json s = url;
    s["algorithms"] = json::array({"RS256", "RS1024"});
    auto c = compile_settings("jwt", s);
    const auto* d = c.find("policy.invalid");
    REQUIRE(d);
    CHECK(d->message == "policy \"p\": unknown algorithm \"RS1024\"");
    CHECK(d->hint.find("ES256") != std::string::npos);
    CHECK(d->pointer == "/algorithms");
    CHECK_FALSE(c.canonical);
  }
  SECTION("none is refused however it is spelled in the list") {
    json s = url;
    s["algorithms"] = "none";
    CHECK(expect_error("jwt", s, "policy.invalid", "\"none\"")
              .find("unsigned tokens are never accepted") != std::string::npos);
  }
  SECTION("an HS algorithm needs a secret") {
    json s = url;
    s["algorithms"] = json::array({"HS256"});
    expect_error("jwt", s, "policy.invalid", "HS256 needs an HMAC secret");
  }
  SECTION("a public-key algorithm needs a public key") {
    expect_error("jwt",
                 {{"secret_env", "JWT_SECRET"}, {"algorithms", json::array({"HS256", "ES256"})}},
                 "policy.invalid", "ES256 needs a public key");
  }
  SECTION("secret_env and secret_file together") {
    expect_error("jwt", {{"secret_env", "A"}, {"secret_file", "/b"}}, "policy.invalid", "not both");
  }
  SECTION("defaults: HMAC only with a secret, public-key algorithms only with keys") {
    auto keys_only = typed<Jwt>("jwt", url);
    CHECK(keys_only.algorithms == std::vector<std::string>{"RS256", "RS384", "RS512", "PS256",
                                                           "PS384", "PS512", "ES256", "ES384",
                                                           "EdDSA"});
    auto secret_only = typed<Jwt>("jwt", {{"secret_env", "JWT_SECRET"}});
    CHECK(secret_only.algorithms == std::vector<std::string>{"HS256", "HS384", "HS512"});
    CHECK(secret_only.secret_env == "JWT_SECRET");
  }
}

TEST_CASE("jwt: key files are read relative to the spec and embedded", "[policy]") {
  TempDir dir;
  // RFC 8037 A.2's Ed25519 public key.
  const std::string jwks =
      R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})";
  dir.write("keys/idp.jwks", jwks);
  dir.write("staff.pem", gwtest::p256_key().pub_pem);
  dir.write("hmac.txt", "s3cret\n");
  auto c = compile_settings("jwt",
                            {{"jwks_file", "keys/idp.jwks"},
                             {"public_key_file", "staff.pem"},
                             {"issuer", "https://idp.example/"},
                             {"audience", json::array({"a", "b"})},
                             {"leeway", "1m"},
                             {"forward_claims", {{"email", "X-User-Email"}}},
                             {"secret_file", "hmac.txt"}},
                            dir.path());
  INFO(c.dump());
  REQUIRE(c.canonical);
  CHECK(c.diags.size() == 0);
  CHECK_FALSE(c.canonical->contains("jwks_file"));
  CHECK_FALSE(c.canonical->contains("public_key_file"));
  CHECK((*c.canonical)["jwks"] == jwks);
  CHECK((*c.canonical)["public_keys"] == json::array({gwtest::p256_key().pub_pem}));
  // The secret itself stays out of the table: only where gwd finds it, made absolute.
  CHECK((*c.canonical)["secret_file"] == (dir.path() / "hmac.txt").string());
  CHECK(c.canonical->dump().find("s3cret") == std::string::npos);

  auto j = typed<Jwt>("jwt", *c.canonical);
  CHECK(j.jwks == jwks);
  CHECK(j.pems == std::vector<std::string>{gwtest::p256_key().pub_pem});
  CHECK(j.issuers == std::vector<std::string>{"https://idp.example/"});
  CHECK(j.audiences == std::vector<std::string>{"a", "b"});
  CHECK(j.leeway_s == 60);
  CHECK(j.forward_claims ==
        std::vector<std::pair<std::string, std::string>>{{"email", "x-user-email"}});
  REQUIRE(j.from.size() == 1);
  CHECK(j.from[0] == Credential{Credential::In::header, "authorization"});
  CHECK(j.consumer_claim == "sub");
  CHECK_FALSE(j.strip);
  CHECK(std::find(j.algorithms.begin(), j.algorithms.end(), "HS256") != j.algorithms.end());
  CHECK(std::find(j.algorithms.begin(), j.algorithms.end(), "ES256") != j.algorithms.end());
  CHECK(std::find(j.algorithms.begin(), j.algorithms.end(), "EdDSA") != j.algorithms.end());
}

TEST_CASE("jwt: a relative secret_file is stored as an absolute path", "[policy]") {
  // gwd reads it when it loads the table, from whatever directory it runs in: a path relative to
  // where gwctl ran would name another file, or none.
  auto j = typed<Jwt>("jwt", {{"secret_file", "secrets/hmac.txt"}}, "specs");
  const fs::path p(j.secret_file);
  CHECK(p.is_absolute());
  CHECK(p == fs::current_path() / "specs" / "secrets" / "hmac.txt");
  CHECK(typed<Jwt>("jwt", {{"secret_file", "/etc/gw/hmac"}}, "specs").secret_file ==
        "/etc/gw/hmac");
}

TEST_CASE("read_hmac_secret drops the file's final newline and caps its size", "[policy]") {
  TempDir dir;
  dir.write("crlf", "s3cret\r\n");
  dir.write("inner", " two\nlines \n");
  dir.write("empty", "\n");
  dir.write("huge", std::string(64 * 1024 + 1, 'x'));
  CHECK(read_hmac_secret("", (dir.path() / "crlf").string()) == "s3cret");
  CHECK(read_hmac_secret("", (dir.path() / "inner").string()) == " two\nlines ");
  auto empty = read_hmac_secret("", (dir.path() / "empty").string());
  REQUIRE_FALSE(empty);
  CHECK(empty.error().message.find("is empty") != std::string::npos);
  auto huge = read_hmac_secret("", (dir.path() / "huge").string());
  REQUIRE_FALSE(huge);
  CHECK(huge.error().code == gw::errc::too_large);
  ::setenv("GW_TEST_HMAC_SECRET", "from env\n", 1); // a variable is taken as it is
  CHECK(read_hmac_secret("GW_TEST_HMAC_SECRET", "") == "from env\n");
  ::unsetenv("GW_TEST_HMAC_SECRET");
  CHECK(read_hmac_secret("GW_TEST_HMAC_SECRET", "").error().code == gw::errc::not_found);
}

TEST_CASE("jwt: bad key material and URLs are refused", "[policy]") {
  TempDir dir;
  dir.write("private.pem", gwtest::p256_key().priv_pem);
  dir.write("bad.jwks", R"({"key": []})");
  auto c = compile_settings("jwt", {{"public_key_file", "private.pem"}}, dir.path());
  REQUIRE(c.find("policy.invalid"));
  CHECK(c.find("policy.invalid")->message.find("holds a private key") != std::string::npos);
  CHECK(c.find("policy.invalid")->pointer == "/public_key_file");
  expect_error("jwt", {{"public_keys", "-----BEGIN PUBLIC KEY-----\nAAAA\n"}}, "policy.invalid",
               "public_keys[1]: not a public key or certificate PEM");

  auto j = compile_settings("jwt", {{"jwks_file", "bad.jwks"}}, dir.path());
  REQUIRE(j.find("policy.invalid"));
  CHECK(j.find("policy.invalid")->message.find("not a JWKS document") != std::string::npos);

  CHECK(compile_settings("jwt", {{"jwks_file", "missing.jwks"}}, dir.path())
            .find("input.unreadable"));
  expect_error("jwt", {{"jwks_url", "ftp://idp.example/jwks"}}, "policy.invalid",
               "jwks_url must be an http");
  expect_error("jwt", {{"jwks_url", "https://idp/jwks"}, {"jwks_refresh", "0s"}}, "policy.invalid",
               "jwks_refresh must be at least 100ms");
  CHECK_FALSE(compile_settings("jwt", {{"jwks_url", "https://idp/jwks"}, {"jwks_refresh", "1s"}})
                  .diags.has_errors());
  expect_error("jwt", {{"jwks_url", "https://idp/jwks"}, {"forward_claims", {{"sub", "x user"}}}},
               "policy.invalid", "\"x user\" is not a header name");
  expect_error("jwt", {{"jwks_url", "https://idp/jwks"}, {"leeway", "soon"}}, "policy.invalid",
               "leeway");
}

TEST_CASE("jwt: a public key gwd would refuse is an error", "[policy]") {
  // OpenSSL reads these keys; gwd's import refuses them, so validate must too.
  static const gwtest::TestKey weak =
      gwtest::make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}));
  static const gwtest::TestKey k256 =
      gwtest::make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1"));
  TempDir dir;
  dir.write("weak.pem", weak.pub_pem);
  dir.write("k256.pem", k256.pub_pem);
  for (const auto* file : {"weak.pem", "k256.pem"}) {
    auto c = compile_settings("jwt", {{"public_key_file", file}}, dir.path());
    INFO(c.dump());
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("policy.invalid");
    REQUIRE(d);
    CHECK(d->pointer == "/public_key_file");
    CHECK(d->message.find((dir.path() / file).string()) != std::string::npos);
    if (file == std::string("weak.pem"))
      CHECK(d->message.find("RSA key has 1024 bits; at least 2048 are required") !=
            std::string::npos);
    else
      CHECK(d->message.find("is not supported (P-256 or P-384)") != std::string::npos);
  }
  expect_error("jwt", {{"public_keys", weak.pub_pem}}, "policy.invalid",
               "public_keys[1]: RSA key has 1024 bits");
}

TEST_CASE("jwt: JWKS keys gwd would skip are reported", "[policy]") {
  const json bad_ec = {
      {"kty", "EC"}, {"crv", "P-256"}, {"kid", "k1"}, {"x", "AAAA"}, {"y", "BBBB"}};
  const json x25519 = {{"kty", "OKP"}, {"crv", "X25519"}, {"kid", "k2"}, {"x", "AAAA"}};
  const std::string jwks = json{{"keys", json::array({bad_ec, x25519})}}.dump();

  SECTION("with no usable key left, every request would be refused") {
    auto c = compile_settings("jwt", {{"jwks", jwks}});
    INFO(c.dump());
    REQUIRE(c.canonical); // gwd loads it: a warning, not an error
    CHECK(c.diags.error_count() == 0);
    const auto* none = c.find("policy.no-keys");
    REQUIRE(none);
    CHECK(none->pointer == "/jwks");
    CHECK(none->message.find("no usable key") != std::string::npos);
    std::vector<std::string> skipped;
    for (const auto& d : c.diags)
      if (d.code == "policy.key-skipped") skipped.push_back(d.message);
    REQUIRE(skipped.size() == 2);
    CHECK(skipped[0].find("keys[0] (kid \"k1\")") != std::string::npos);
    CHECK(skipped[1].find("keys[1] (kid \"k2\")") != std::string::npos);
  }
  SECTION("beside a usable key, each skipped key still warns") {
    auto c = compile_settings("jwt", {{"jwks", jwks}, {"public_keys", gwtest::p256_key().pub_pem}});
    REQUIRE(c.canonical);
    CHECK_FALSE(c.find("policy.no-keys"));
    CHECK(c.find("policy.key-skipped"));
  }
}

TEST_CASE("jwt without any key warns policy.no-keys", "[policy]") {
  auto c = compile_settings("jwt", json::object());
  REQUIRE(c.canonical);
  REQUIRE(c.find("policy.no-keys"));
  CHECK(c.diags.error_count() == 0);
}

// ---- access, any_of

TEST_CASE("access and any_of settings", "[policy]") {
  auto a = typed<Access>("access",
                         {{"scopes", "orders:write"},
                          {"claims", {{"tenant", json::array({"t1", "t2"})}, {"plan", "gold"}}},
                          {"deny_consumers", json::array({"mallory"})}});
  CHECK(a.scopes == std::vector<std::string>{"orders:write"});
  REQUIRE(a.claims.size() == 2);
  CHECK(a.claims[0] == std::pair<std::string, std::vector<std::string>>{"plan", {"gold"}});
  CHECK(a.claims[1] == std::pair<std::string, std::vector<std::string>>{"tenant", {"t1", "t2"}});
  CHECK(a.deny_consumers == std::vector<std::string>{"mallory"});
  expect_error("access", json::object(), "policy.invalid", "checks nothing");
  expect_error("access", {{"claims", {{"tenant", 5}}}}, "policy.invalid", "claims.tenant");

  const json options =
      json::array({json{{"policies", json::array({"keys"})}},
                   json{{"policies", json::array({"staff"})}, {"scopes", json::array({"admin"})}},
                   json::object()});
  auto any = typed<AnyOf>("any_of", {{"options", options}});
  REQUIRE(any.options.size() == 3);
  CHECK(any.options[1].policies == std::vector<std::string>{"staff"});
  CHECK(any.options[1].scopes == std::vector<std::string>{"admin"});
  CHECK(any.options[2].policies.empty()); // anonymous
  expect_error("any_of", json::object(), "policy.invalid", "options must be a non-empty array");
  expect_error("any_of", {{"options", json::array({json{{"policy", json::array({"keys"})}}})}},
               "policy.invalid", "options[1]");
}

// ---- rate_limit

TEST_CASE("rate_limit: rate forms", "[policy]") {
  struct Case {
    const char* rate;
    std::uint64_t count;
    std::int64_t per_ms;
  };
  for (const auto& c :
       {Case{"100/s", 100, 1000}, Case{"6000/m", 6000, 60'000}, Case{"10/10s", 10, 10'000},
        Case{"10/h", 10, 3'600'000}, Case{"5/500ms", 5, 500}, Case{"1/1m30s", 1, 90'000}}) {
    INFO(c.rate);
    auto r = typed<RateLimit>("rate_limit", {{"rate", c.rate}});
    CHECK(r.count == c.count);
    CHECK(r.per.count() == c.per_ms);
    CHECK(r.burst == c.count); // default burst: the count
    CHECK(r.interval_us() == c.per_ms * 1000 / static_cast<std::int64_t>(c.count));
    CHECK(r.key == RateLimit::Key::client_ip);
    CHECK_FALSE(r.redis);
  }
  for (const char* bad :
       {"abc", "0/s", "10", "10/", "/s", "-1/s", "10/0s", "10/x", "10/sec", "1e3/s", " 10/s"}) {
    INFO(bad);
    expect_error("rate_limit", {{"rate", bad}}, "policy.invalid",
                 std::string("rate \"") + bad + "\"");
  }
  expect_error("rate_limit", {{"rate", 100}}, "policy.invalid", "rate must be a string");
  expect_error("rate_limit", json::object(), "spec.missing-key", "has no rate");
  expect_error("rate_limit", {{"rate", "2000000/s"}}, "policy.invalid", "rate is too high");
}

TEST_CASE("rate_limit: burst", "[policy]") {
  CHECK(typed<RateLimit>("rate_limit", {{"rate", "10/s"}, {"burst", 25}}).burst == 25);
  CHECK(typed<RateLimit>("rate_limit", {{"rate", "10/s"}, {"burst", 1}}).burst == 1);
  for (const json& bad : {json(0), json(-3), json("5"), json(2.5)}) {
    INFO(bad.dump());
    expect_error("rate_limit", {{"rate", "10/s"}, {"burst", bad}}, "policy.invalid",
                 "burst must be an integer from 1");
  }
  // A bucket deeper than anything sensible would overflow the nanosecond arithmetic.
  expect_error("rate_limit", {{"rate", "1/h"}, {"burst", 1'000'000'000}}, "policy.invalid",
               "burst");
  CHECK(typed<RateLimit>("rate_limit", {{"rate", "1/h"}, {"burst", 1000}}).burst == 1000);
}

TEST_CASE("rate_limit: key forms", "[policy]") {
  using K = RateLimit::Key;
  struct Case {
    const char* key;
    K kind;
    const char* name;
  };
  for (const auto& c : {Case{"client_ip", K::client_ip, ""}, Case{"consumer", K::consumer, ""},
                        Case{"route", K::route, ""}, Case{"global", K::global, ""},
                        Case{"header:X-Tenant", K::header, "x-tenant"},
                        Case{"claim:tenant_id", K::claim, "tenant_id"}}) {
    INFO(c.key);
    auto r = typed<RateLimit>("rate_limit", {{"rate", "1/s"}, {"key", c.key}});
    CHECK(r.key == c.kind);
    CHECK(r.key_name == c.name);
  }
  for (const char* bad : {"ip", "header:", "header:x tenant", "claim:", "Consumer", "cookie:sid"}) {
    INFO(bad);
    expect_error("rate_limit", {{"rate", "1/s"}, {"key", bad}}, "policy.invalid",
                 std::string("key \"") + bad + "\"");
  }
}

TEST_CASE("rate_limit: the redis store needs an IP literal address", "[policy]") {
  SECTION("IPv4 and bracketed IPv6") {
    auto r = typed<RateLimit>("rate_limit", {{"rate", "1/s"},
                                             {"store", "redis"},
                                             {"redis", "10.0.0.7:6380"},
                                             {"redis_timeout", "50ms"},
                                             {"on_redis_error", "deny"}});
    CHECK(r.redis);
    CHECK(r.redis_host == "10.0.0.7");
    CHECK(r.redis_port == 6380);
    CHECK(r.redis_timeout.count() == 50);
    CHECK_FALSE(r.fail_open);
    auto v6 = typed<RateLimit>("rate_limit", {{"rate", "1/s"}, {"redis", "[::1]:6379"}});
    CHECK(v6.redis); // an address alone implies the redis store
    CHECK(v6.redis_host == "::1");
    CHECK(v6.redis_port == 6379);
    CHECK(v6.fail_open);
    auto default_port = typed<RateLimit>("rate_limit", {{"rate", "1/s"}, {"redis", "127.0.0.1"}});
    CHECK(default_port.redis_host == "127.0.0.1");
    CHECK(default_port.redis_port == 6379);
    CHECK(typed<RateLimit>("rate_limit", {{"rate", "1/s"}, {"redis", "[fd00::7]"}}).redis_host ==
          "fd00::7");
  }
  SECTION("host names and malformed addresses are refused") {
    for (const char* bad :
         {"redis.internal:6379", "localhost:6379", "localhost", "127.0.0.1:0", "127.0.0.1:70000",
          "127.0.0.1:99999999999", "127.0.0.1:", ":6379", "::1:6379", "::1", "[::1]:", "[::1",
          "[redis]:6379", "127.0.0.1:63x9", "300.0.0.1:6379"}) {
      INFO(bad);
      expect_error("rate_limit", {{"rate", "1/s"}, {"store", "redis"}, {"redis", bad}},
                   "policy.invalid", "redis must be");
    }
  }
  SECTION("store and redis settings must agree") {
    expect_error("rate_limit", {{"rate", "1/s"}, {"store", "redis"}}, "policy.invalid",
                 "needs redis = ");
    expect_error("rate_limit", {{"rate", "1/s"}, {"store", "memcached"}}, "policy.invalid",
                 "store must be");
    expect_error("rate_limit", {{"rate", "1/s"}, {"redis_timeout", "1s"}}, "policy.invalid",
                 "applies only with store = \"redis\"");
    expect_error("rate_limit",
                 {{"rate", "1/s"}, {"redis", "127.0.0.1:6379"}, {"on_redis_error", "maybe"}},
                 "policy.invalid", "on_redis_error must be");
  }
}

// ---- headers

TEST_CASE("headers: operations are typed with lowercase names", "[policy]") {
  auto h = typed<Headers>(
      "headers", {{"request",
                   {{"set", {{"X-Gateway", "gw"}}},
                    {"add", {{"Via-Note", "a b"}}},
                    {"remove", json::array({"X-Internal"})},
                    {"rename", {{"X-Old", "X-New"}}}}},
                  {"response",
                   {{"remove", json::array({"Server"})}, {"set", {{"Cache-Control", "no-store"}}}}},
                  {"query", {{"set", {{"v", "2"}}}, {"remove", json::array({"debug"})}}}});
  CHECK(h.request.set == std::vector<std::pair<std::string, std::string>>{{"x-gateway", "gw"}});
  CHECK(h.request.add == std::vector<std::pair<std::string, std::string>>{{"via-note", "a b"}});
  CHECK(h.request.remove == std::vector<std::string>{"x-internal"});
  CHECK(h.request.rename == std::vector<std::pair<std::string, std::string>>{{"x-old", "x-new"}});
  CHECK(h.response.remove == std::vector<std::string>{"server"});
  CHECK(h.response.set ==
        std::vector<std::pair<std::string, std::string>>{{"cache-control", "no-store"}});
  CHECK(h.query_set == std::vector<std::pair<std::string, std::string>>{{"v", "2"}});
  CHECK(h.query_remove == std::vector<std::string>{"debug"});
}

TEST_CASE("headers: bad operations are refused", "[policy]") {
  expect_error("headers", json::object(), "policy.invalid", "changes nothing");
  expect_error("headers", {{"request", {{"set", {{"Host", "evil"}}}}}}, "policy.invalid",
               "\"host\" is managed by the proxy");
  expect_error("headers", {{"request", {{"remove", json::array({"Content-Length"})}}}},
               "policy.invalid", "\"content-length\" is managed");
  expect_error("headers", {{"request", {{"rename", {{"x-a", "Transfer-Encoding"}}}}}},
               "policy.invalid", "\"transfer-encoding\"");
  // Every hop-by-hop field the proxy drops: a value set here would reach the upstream after it.
  for (const char* hop : {"Proxy-Authorization", "proxy-authenticate", "Proxy-Connection", "TE",
                          "keep-alive", "upgrade", "trailer"}) {
    INFO(hop);
    expect_error("headers", {{"request", {{"set", {{hop, "x"}}}}}}, "policy.invalid",
                 "is managed by the proxy and cannot be changed here");
    expect_error("headers", {{"response", {{"add", {{hop, "x"}}}}}}, "policy.invalid",
                 "is managed by the proxy");
  }
  expect_error(
      "jwt",
      {{"jwks_url", "https://idp/jwks"}, {"forward_claims", {{"sub", "Proxy-Authorization"}}}},
      "policy.invalid", "\"Proxy-Authorization\" is managed by the proxy");
  expect_error("headers", {{"response", {{"set", {{"x-a", "1\r\nx-b: 2"}}}}}}, "policy.invalid",
               "not a valid header value");
  expect_error("headers", {{"request", {{"set", {{"x a", "1"}}}}}}, "policy.invalid",
               "\"x a\" is not a header name");
  expect_error("headers", {{"request", {{"replace", {{"x-a", "1"}}}}}}, "policy.invalid",
               "unknown operation \"request.replace\"");
  expect_error("headers", {{"request", {{"set", {{"x-a", 1}}}}}}, "policy.invalid",
               "request.set.x-a must be a string");
  expect_error("headers", {{"query", {{"drop", json::array({"a"})}}}}, "policy.invalid",
               "query.drop");
}

// ---- cors

TEST_CASE("cors: origins and defaults", "[policy]") {
  auto c = typed<Cors>(
      "cors", {{"origins", json::array({"https://App.Example.com", "http://localhost:3000"})},
               {"headers", json::array({"Content-Type", "X-Api-Key"})},
               {"expose_headers", "X-Request-Id"},
               {"credentials", true},
               {"max_age", "1h"}});
  CHECK(c.origins == std::vector<std::string>{"https://app.example.com", "http://localhost:3000"});
  CHECK(c.methods == std::vector<std::string>{"GET", "HEAD", "POST"});
  CHECK(c.headers == std::vector<std::string>{"content-type", "x-api-key"});
  CHECK(c.expose == std::vector<std::string>{"x-request-id"});
  CHECK(c.credentials);
  CHECK(c.max_age.count() == 3'600'000);
  CHECK(typed<Cors>("cors", {{"origins", "*"}}).max_age.count() == 600'000);
}

TEST_CASE("cors: bad settings are refused", "[policy]") {
  expect_error("cors", json::object(), "spec.missing-key", "has no origins");
  // Browsers refuse credentialed responses with "Access-Control-Allow-Origin: *", so the
  // combination is an error rather than a policy that silently never works.
  auto msg = expect_error(
      "cors", {{"origins", json::array({"https://a.example", "*"})}, {"credentials", true}},
      "policy.invalid", "credentials = true cannot be combined with origin \"*\"");
  auto c = compile_settings("cors", {{"origins", "*"}, {"credentials", true}});
  REQUIRE(c.find("policy.invalid"));
  CHECK(c.find("policy.invalid")->pointer == "/credentials");
  expect_error("cors", {{"origins", "app.example.com"}}, "policy.invalid",
               "must be \"*\" or scheme://host[:port]");
  expect_error("cors", {{"origins", "https://app.example.com/"}}, "policy.invalid", "has a path");
  expect_error("cors", {{"origins", "https://a.example"}, {"max_age", "10"}}, "policy.invalid",
               "max_age");
  // A lower-case method would never equal what a browser sends in a preflight.
  expect_error("cors", {{"origins", "https://a.example"}, {"methods", json::array({"GET", "put"})}},
               "policy.invalid", "method \"put\" must be an upper-case method name");
}

// ---- routes: attach and the rules between a route's policies

namespace {
const std::string kPolicies = std::string(kPrelude) + R"(
[policies.keys]
kind = "api_key"
header = "x-api-key"
keys = [{ consumer = "acme", sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" }]
[policies.acl]
kind = "access"
consumers = ["acme"]
[policies.per-consumer]
kind = "rate_limit"
rate = "10/s"
key = "consumer"
[policies.per-tenant]
kind = "rate_limit"
rate = "10/s"
key = "claim:tenant"
[policies.per-ip]
kind = "rate_limit"
rate = "10/s"
[policies.browser]
kind = "cors"
origins = ["https://app.example.com"]
[policies.other-browser]
kind = "cors"
origins = ["https://other.example.com"]
[policies.hdrs]
kind = "headers"
request = { set = { x-gw = "1" } }
)";
} // namespace

TEST_CASE("route policies run in phase order whatever order they are listed in", "[policy]") {
  auto b = build_spec(kPolicies + R"(
[[routes]]
name = "r"
upstream = "u"
prefix = "/"
policies = ["hdrs", "per-consumer", "acl", "keys", "browser"]
)");
  INFO(b.dump());
  REQUIRE(b.config);
  CHECK(route_policy_names(b, "r") ==
        std::vector<std::string>{"browser", "keys", "acl", "per-consumer", "hdrs"});
}

TEST_CASE("access or a consumer-keyed rate limit without authentication is an error", "[policy]") {
  auto route = [](const std::string& policies) {
    return kPolicies + "[[routes]]\nname = \"r\"\nupstream = \"u\"\nprefix = \"/\"\npolicies = [" +
           policies + "]\n";
  };
  SECTION("access alone") {
    auto b = build_spec(route("\"acl\""));
    INFO(b.dump());
    CHECK_FALSE(b.config);
    const auto* d = find_in(b, "policy.needs-authentication", "access policy \"acl\"");
    REQUIRE(d);
    CHECK(d->line == 36); // the route's policies list
    CHECK(d->col == 12);
    CHECK(d->hint.find("[[attach]]") != std::string::npos);
  }
  SECTION("rate_limit by consumer alone") {
    auto b = build_spec(route("\"per-consumer\""));
    CHECK(find_in(b, "policy.needs-authentication", "counts by consumer"));
  }
  SECTION("rate_limit by claim needs a jwt, not any authentication") {
    auto b = build_spec(route("\"keys\", \"per-tenant\""));
    CHECK(find_in(b, "policy.needs-authentication", "counts by claim:tenant"));
  }
  SECTION("listed after an authentication policy, or before it: both fine") {
    CHECK(build_spec(route("\"acl\", \"per-consumer\", \"keys\"")).config);
    CHECK(build_spec(route("\"keys\", \"acl\"")).config);
    CHECK(build_spec(route("\"per-ip\"")).config); // client_ip needs nobody
  }
  SECTION("two cors policies") {
    auto b = build_spec(route("\"browser\", \"other-browser\""));
    CHECK(find_in(b, "policy.conflict", "more than one cors policy"));
    CHECK_FALSE(b.config);
  }
}

TEST_CASE("a rate limit by claim needs a jwt policy, by consumer any authentication", "[policy]") {
  const std::string spec = kPolicies + R"(
[policies.token]
kind = "jwt"
secret_env = "GW_TEST_UNSET_SECRET"
[policies.either]
kind = "any_of"
options = [{ policies = ["keys"] }, { policies = ["token"] }]
)";
  auto route = [&](const std::string& policies) {
    return spec + "[[routes]]\nname = \"r\"\nupstream = \"u\"\nprefix = \"/\"\npolicies = [" +
           policies + "]\n";
  };
  SECTION("an api_key does not carry claims") {
    auto b = build_spec(route("\"keys\", \"per-tenant\""));
    INFO(b.dump());
    CHECK_FALSE(b.config);
    const auto* d = find_in(b, "policy.needs-authentication", "\"per-tenant\"");
    REQUIRE(d);
    CHECK(d->message == "route \"r\": rate_limit \"per-tenant\" counts by claim:tenant, which "
                        "needs a jwt policy on the route");
  }
  SECTION("a consumer comes from any authentication policy") {
    auto b = build_spec(route("\"per-consumer\""));
    INFO(b.dump());
    CHECK_FALSE(b.config);
    const auto* d = find_in(b, "policy.needs-authentication", "\"per-consumer\"");
    REQUIRE(d);
    CHECK(d->message == "route \"r\": rate_limit \"per-consumer\" counts by consumer, which "
                        "needs an authentication policy on the route");
    CHECK(build_spec(route("\"keys\", \"per-consumer\"")).config);
  }
  SECTION("a jwt or an any_of policy on the route is enough") {
    auto jwt = build_spec(route("\"per-tenant\", \"token\""));
    INFO(jwt.dump());
    CHECK(jwt.config);
    auto any_of = build_spec(route("\"either\", \"per-tenant\""));
    INFO(any_of.dump());
    CHECK(any_of.config);
  }
}

TEST_CASE("[[attach]] adds policies to routes by host and by path prefix", "[policy]") {
  auto b = build_spec(kPolicies + R"(
[[attach]]
hosts = ["API.example.com"]
policies = ["keys"]
[[attach]]
prefix = "/admin"
policies = ["browser", "per-ip"]
[[routes]]
name = "api"
upstream = "u"
hosts = ["api.example.com"]
prefix = "/orders"
policies = ["acl"]
[[routes]]
name = "any-host"
upstream = "u"
prefix = "/orders"
[[routes]]
name = "admin"
upstream = "u"
prefix = "/admin"
[[routes]]
name = "admin-sub"
upstream = "u"
path = "/admin/users"
[[routes]]
name = "administrator"
upstream = "u"
path = "/administrator"
)");
  INFO(b.dump());
  REQUIRE(b.config);
  // The attached api_key is what lets "api" use an access policy.
  CHECK(route_policy_names(b, "api") == std::vector<std::string>{"keys", "acl"});
  CHECK(route_policy_names(b, "any-host").empty()); // a route for any host is not api.example.com's
  CHECK(route_policy_names(b, "admin") == std::vector<std::string>{"browser", "per-ip"});
  CHECK(route_policy_names(b, "admin-sub") == std::vector<std::string>{"browser", "per-ip"});
  CHECK(route_policy_names(b, "administrator").empty()); // prefixes respect segment boundaries
}

TEST_CASE("[[attach]] and any_of references are checked", "[policy]") {
  SECTION("unknown policy in [[attach]], with a suggestion") {
    auto b = build_spec(kPolicies + "[[attach]]\npolicies = [\"keyz\"]\n");
    const auto* d = find_in(b, "ref.unknown-policy", "\"keyz\"");
    REQUIRE(d);
    CHECK(d->hint == "did you mean \"keys\"?");
  }
  SECTION("[[attach]] without policies") {
    CHECK(find_in(build_spec(kPolicies + "[[attach]]\nprefix = \"/\"\npolicies = []\n"),
                  "spec.missing-key"));
  }
  SECTION("[[attach]] prefix must be a path") {
    CHECK(find_in(build_spec(kPolicies + "[[attach]]\nprefix = \"admin\"\npolicies = [\"keys\"]\n"),
                  "value.path"));
  }
  SECTION("any_of options name authentication policies only") {
    auto b = build_spec(kPolicies +
                        "[policies.either]\nkind = \"any_of\"\noptions = [{ policies = [\"keys\"] "
                        "}, { policies = [\"per-ip\"] }, { policies = [\"keyz\"] }]\n");
    INFO(b.dump());
    CHECK(find_in(b, "policy.invalid", "option policy \"per-ip\" is a rate_limit policy"));
    const auto* d = find_in(b, "ref.unknown-policy", "\"keyz\"");
    REQUIRE(d);
    CHECK(d->hint == "did you mean \"keys\"?");
  }
}
