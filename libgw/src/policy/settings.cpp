#include "gw/policy/settings.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <set>

#include <arpa/inet.h>

#include "gw/core/file.hpp"
#include "gw/core/text.hpp"
#include "gw/policy/jwt.hpp"
#include "fields.hpp"

namespace gw::policy {
namespace {

using json = nlohmann::json;
using namespace std::string_view_literals;

constexpr std::array<std::string_view, 8> kKindNames = {
    "api_key"sv, "basic"sv, "jwt"sv, "access"sv, "any_of"sv, "rate_limit"sv, "headers"sv, "cors"sv};

/// `header`, `query`, `cookie` (each a name or a list of names).
std::vector<Credential> credentials(Fields& f, bool strip_default) {
  std::vector<Credential> out;
  // Reading a header the proxy owns (Host, say) is harmless; removing it is not.
  const json* strip_value = f.get("strip");
  const bool strip =
      strip_value && strip_value->is_boolean() ? strip_value->get<bool>() : strip_default;
  for (auto [key, in] :
       {std::pair{"header"sv, Credential::In::header}, std::pair{"query"sv, Credential::In::query},
        std::pair{"cookie"sv, Credential::In::cookie}}) {
    auto names = f.strings(key);
    if (!names) continue;
    for (auto& n : *names) {
      if (in == Credential::In::header && !text::is_token(n)) {
        f.error(key, "header name " + text::quote(n) + " is not a valid field name");
        continue;
      }
      if (in == Credential::In::header && strip && managed_by_proxy(n)) {
        f.error(
            key,
            "header " + text::quote(n) +
                " is managed by the proxy and cannot be stripped; set strip = false to read it");
        continue;
      }
      if (n.empty()) {
        f.error(key, std::string(key) + " names must not be empty");
        continue;
      }
      out.push_back(Credential{in, in == Credential::In::header ? text::lower(n) : n});
    }
  }
  return out;
}

std::string header_option(Fields& f, std::string_view key, std::string fallback) {
  auto v = f.str(key);
  if (!v) return fallback;
  if (!v->empty() && !text::is_token(*v))
    f.error(key, text::quote(*v) + " is not a header name");
  else if (managed_by_proxy(*v))
    f.error(key, text::quote(*v) + " is managed by the proxy and cannot be set here");
  return text::lower(*v);
}

// ---- api_key

bool parse_digest(std::string_view hex, Sha256& out) {
  if (hex.size() != 64) return false;
  for (std::size_t i = 0; i < 32; ++i) {
    unsigned v = 0;
    const auto r = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, v, 16);
    if (r.ec != std::errc{} || r.ptr != hex.data() + 2 * i + 2) return false;
    out[i] = static_cast<unsigned char>(v);
  }
  return true;
}

ApiKey read_api_key(Fields& f, json* canonical) {
  ApiKey a;
  a.from = credentials(f, true);
  if (a.from.empty() && f.ok())
    f.error("", "says nowhere to find the key: give header, query or cookie");
  if (auto v = f.boolean("strip")) a.strip = *v;
  a.consumer_header = header_option(f, "consumer_header", a.consumer_header);
  if (auto v = f.str("realm")) a.realm = *v;
  std::set<std::string> consumers_seen;
  auto add = [&](std::string_view key, std::string consumer, std::string_view hash,
                 const std::string& where) {
    Sha256 d{};
    std::string_view hex = hash;
    if (hex.starts_with("sha256:")) hex.remove_prefix(7);
    if (consumer.empty() || !parse_digest(hex, d)) {
      f.error(key, where + ": expected \"CONSUMER sha256:HEX\" (64 hex digits); make lines with "
                           "`gwctl key new`");
      return;
    }
    if (!valid_header_value(consumer)) { // it is sent upstream in the consumer header
      f.error(key, where + ": consumer " + text::quote(consumer) + " contains control characters");
      return;
    }
    a.keys.emplace_back(d, std::move(consumer));
  };
  if (const json* keys = f.get("keys")) {
    if (!keys->is_array()) {
      f.error("keys", "keys must be an array of { consumer, sha256 } tables");
    } else {
      std::size_t i = 0;
      for (const auto& k : *keys) {
        ++i;
        if (!k.is_object() || !k.contains("consumer") || !k.contains("sha256") ||
            !k["consumer"].is_string() || !k["sha256"].is_string() || k.size() != 2) {
          f.error("keys", "keys[" + std::to_string(i) +
                              "] must be { consumer = \"...\", sha256 = \"...\" }");
          continue;
        }
        add("keys", k["consumer"].get<std::string>(), k["sha256"].get<std::string>(),
            "keys[" + std::to_string(i) + "]");
      }
    }
  }
  if (auto file = f.str("keys_file")) {
    const auto path = resolve(f.ctx(), *file);
    auto text = file::read_all(path.string(), kMaxPolicyFile);
    if (!text) {
      f.error("keys_file", "keys_file " + text.error().message, "input.unreadable");
    } else {
      text::for_each_config_line(*text, [&](std::size_t line_no, std::string_view line) {
        const auto sp = line.find_first_of(" \t");
        const std::string consumer(line.substr(0, sp));
        const std::string_view hash =
            sp == std::string_view::npos ? "" : text::trim(line.substr(sp + 1));
        add("keys_file", consumer, hash, path.string() + ":" + std::to_string(line_no));
      });
    }
  }
  // Without keys every request is refused (401): safe, but almost certainly unfinished (an
  // OpenAPI import leaves its policies so, for a TOML spec to complete).
  if (a.keys.empty() && f.ok()) {
    if (!f.has("keys") && !f.has("keys_file"))
      f.warn("",
             "has no keys, so it refuses every request; give keys_file (lines \"CONSUMER "
             "sha256:HEX\") or keys",
             "policy.no-keys");
    else // an empty file or list: as unfinished as no keys at all
      f.warn(f.has("keys_file") ? "keys_file" : "keys",
             "lists no keys, so it refuses every request", "policy.no-keys");
  }
  std::sort(a.keys.begin(), a.keys.end());
  for (std::size_t i = 1; i < a.keys.size(); ++i)
    if (a.keys[i].first == a.keys[i - 1].first)
      f.error(f.has("keys_file") ? "keys_file" : "keys",
              "the same key is listed for " + text::quote(a.keys[i - 1].second) + " and " +
                  text::quote(a.keys[i].second));
  if (canonical) {
    canonical->erase("keys_file");
    json keys = json::array();
    for (const auto& [d, c] : a.keys)
      keys.push_back({{"consumer", c}, {"sha256", to_hex(d)}});
    (*canonical)["keys"] = std::move(keys);
  }
  return a;
}

// ---- basic

bool supported_crypt_hash(std::string_view h) {
  // bcrypt, SHA-crypt and yescrypt through libxcrypt; not MD5-apr1 or {SHA} (too weak or
  // unsupported).
  return h.starts_with("$2y$") || h.starts_with("$2b$") || h.starts_with("$2a$") ||
         h.starts_with("$5$") || h.starts_with("$6$") || h.starts_with("$y$");
}

Basic read_basic(Fields& f, json* canonical) {
  Basic b;
  if (auto v = f.boolean("strip")) b.strip = *v;
  b.consumer_header = header_option(f, "consumer_header", b.consumer_header);
  if (auto v = f.str("realm")) b.realm = *v;
  auto add = [&](std::string_view key, std::string_view line, const std::string& where) {
    const auto colon = line.find(':');
    const std::string user(line.substr(0, colon));
    const std::string hash(colon == std::string_view::npos ? "" : line.substr(colon + 1));
    if (user.empty() || hash.empty()) {
      f.error(key, where + ": expected \"user:hash\"");
      return;
    }
    if (!valid_header_value(user)) { // it is sent upstream in the consumer header
      f.error(key, where + ": user " + text::quote(user) + " contains control characters");
      return;
    }
    if (!supported_crypt_hash(hash)) {
      f.error(key, where + ": the hash of " + text::quote(user) +
                       " is not bcrypt, SHA-crypt or yescrypt (make one with `htpasswd -B` or "
                       "`openssl passwd -6`)");
      return;
    }
    b.users.emplace_back(user, hash);
  };
  if (const json* users = f.get("users")) {
    if (!users->is_array() ||
        !std::all_of(users->begin(), users->end(), [](const json& u) { return u.is_string(); })) {
      f.error("users", "users must be an array of \"user:hash\" strings");
    } else {
      std::size_t i = 0;
      for (const auto& u : *users)
        add("users", u.get<std::string>(), "users[" + std::to_string(++i) + "]");
    }
  }
  if (auto file = f.str("htpasswd_file")) {
    const auto path = resolve(f.ctx(), *file);
    auto text = file::read_all(path.string(), kMaxPolicyFile);
    if (!text) {
      f.error("htpasswd_file", "htpasswd_file " + text.error().message, "input.unreadable");
    } else {
      text::for_each_config_line(*text, [&](std::size_t line_no, std::string_view line) {
        add("htpasswd_file", line, path.string() + ":" + std::to_string(line_no));
      });
    }
  }
  if (b.users.empty() && f.ok()) {
    if (!f.has("users") && !f.has("htpasswd_file"))
      f.warn("", "has no users, so it refuses every request; give htpasswd_file or users",
             "policy.no-keys");
    else
      f.warn(f.has("htpasswd_file") ? "htpasswd_file" : "users",
             "lists no users, so it refuses every request", "policy.no-keys");
  }
  std::sort(b.users.begin(), b.users.end());
  for (std::size_t i = 1; i < b.users.size(); ++i)
    if (b.users[i].first == b.users[i - 1].first)
      f.error(f.has("htpasswd_file") ? "htpasswd_file" : "users",
              "user " + text::quote(b.users[i].first) + " is listed twice");
  if (canonical) {
    canonical->erase("htpasswd_file");
    json users = json::array();
    for (const auto& [u, h] : b.users)
      users.push_back(u + ":" + h);
    (*canonical)["users"] = std::move(users);
  }
  return b;
}

// ---- jwt

bool http_url(std::string_view u) {
  return u.starts_with("http://") || u.starts_with("https://");
}

Jwt read_jwt(Fields& f, json* canonical) {
  Jwt j;
  j.from = credentials(f, false);
  if (j.from.empty()) j.from.push_back(Credential{Credential::In::header, "authorization"});
  // Each key is imported as gwd will import it, so a key gwd would refuse (RSA under 2048 bits,
  // an unsupported curve, a private key) is refused here, with gwd's reason.
  auto add_pem = [&](std::string_view key, std::string pem, const std::string& where) {
    if (auto k = jwt::Key::from_pem(pem); !k)
      f.error(key, where + ": " + k.error().message);
    else
      j.pems.push_back(std::move(pem));
  };
  if (auto v = f.strings("public_keys")) {
    for (std::size_t i = 0; i < v->size(); ++i)
      add_pem("public_keys", std::move((*v)[i]), "public_keys[" + std::to_string(i + 1) + "]");
  }
  if (auto files = f.strings("public_key_file")) {
    for (const auto& file : *files) {
      const auto path = resolve(f.ctx(), file);
      auto text = file::read_all(path.string(), kMaxPolicyFile);
      if (!text)
        f.error("public_key_file", "public_key_file " + text.error().message, "input.unreadable");
      else
        add_pem("public_key_file", std::move(*text), path.string());
    }
  }
  if (auto v = f.str("jwks")) j.jwks = *v;
  if (auto file = f.str("jwks_file")) {
    const auto path = resolve(f.ctx(), *file);
    auto text = file::read_all(path.string(), kMaxPolicyFile);
    if (!text)
      f.error("jwks_file", "jwks_file " + text.error().message, "input.unreadable");
    else
      j.jwks = std::move(*text);
  }
  std::size_t jwks_keys = 0;
  if (!j.jwks.empty()) {
    // gwd skips the keys it cannot use (jwt::parse_jwks): say which, and why, before it does.
    const std::string_view key = f.has("jwks_file") ? "jwks_file" : "jwks";
    auto set = jwt::parse_jwks(j.jwks);
    if (!set) {
      f.error(key, "not a JWKS document ({\"keys\": [...]}): " + set.error().message);
    } else {
      jwks_keys = set->keys.size();
      for (const auto& why : set->skipped)
        f.warn(key, "gwd skips JWKS " + why, "policy.key-skipped");
    }
  }
  if (auto v = f.str("jwks_url")) {
    j.jwks_url = *v;
    if (!http_url(*v)) f.error("jwks_url", "jwks_url must be an http:// or https:// URL");
  }
  if (auto v = f.str("openid_connect_url")) {
    j.openid_connect_url = *v;
    if (!http_url(*v))
      f.error("openid_connect_url", "openid_connect_url must be an http:// or https:// URL");
  }
  if (auto v = f.duration("jwks_refresh")) {
    j.jwks_refresh = *v;
    if (*v < std::chrono::milliseconds(100)) // 0s would refetch in a loop
      f.error("jwks_refresh", "jwks_refresh must be at least 100ms");
  }
  if (auto v = f.str("secret_env")) j.secret_env = *v;
  if (auto v = f.str("secret_file")) {
    // gwd reads it at load, from its own working directory: store an absolute path.
    std::error_code ec;
    const auto path = resolve(f.ctx(), *v);
    const auto abs = std::filesystem::absolute(path, ec);
    j.secret_file = (ec ? path : abs).string();
    if (v->empty()) f.error("secret_file", "secret_file must name a file");
  }
  if (!j.secret_env.empty() && !j.secret_file.empty())
    f.error("secret_file", "give secret_env or secret_file, not both");
  const bool secret = !j.secret_env.empty() || !j.secret_file.empty();
  const bool public_key =
      !j.pems.empty() || !j.jwks.empty() || !j.jwks_url.empty() || !j.openid_connect_url.empty();
  const bool other_keys =
      !j.pems.empty() || !j.jwks_url.empty() || !j.openid_connect_url.empty() || secret;
  if (j.jwks.empty() && !other_keys && f.ok())
    f.warn("",
           "has no keys, so it refuses every request; give public_key_file, jwks_file, "
           "jwks_url, openid_connect_url, secret_env or secret_file",
           "policy.no-keys");
  else if (!j.jwks.empty() && jwks_keys == 0 && !other_keys && f.ok())
    f.warn(f.has("jwks_file") ? "jwks_file" : "jwks",
           "its JWKS holds no usable key, so it refuses every request", "policy.no-keys");
  if (auto algs = f.strings("algorithms")) {
    for (const auto& a : *algs) {
      if (!jwt::alg_from_name(a)) {
        auto* d =
            f.error("algorithms", "unknown algorithm " + text::quote(a) +
                                      (a == "none" ? " (unsigned tokens are never accepted)" : ""));
        if (d) d->with_hint("algorithms: " + text::join(jwt::alg_names(), " "));
        continue;
      }
      const bool hs = a.starts_with("HS");
      if (hs && !secret)
        f.error("algorithms", a + " needs an HMAC secret (secret_env or secret_file)");
      if (!hs && secret && !public_key)
        f.error("algorithms", a + " needs a public key; this policy has only a secret");
      j.algorithms.push_back(a);
    }
  } else {
    // Default: what the keys can check. HMAC only with a configured secret, so a public key can
    // never be misused as an HMAC secret (algorithm confusion).
    for (const auto& a : jwt::alg_names()) {
      const bool hs = a.starts_with("HS");
      if (hs ? secret : public_key) j.algorithms.emplace_back(a);
    }
  }
  if (auto v = f.strings("issuer")) j.issuers = *v;
  if (auto v = f.strings("audience")) j.audiences = *v;
  if (auto v = f.duration("leeway")) j.leeway_s = v->count() / 1000;
  if (auto v = f.boolean("require_exp")) j.require_exp = *v;
  if (auto v = f.string_table("forward_claims")) {
    for (auto& [claim, header] : *v) {
      if (!text::is_token(header))
        f.error("forward_claims", text::quote(header) + " is not a header name");
      else if (managed_by_proxy(header))
        f.error("forward_claims",
                text::quote(header) + " is managed by the proxy and cannot be set here");
      j.forward_claims.emplace_back(claim, text::lower(header));
    }
  }
  if (auto v = f.str("consumer_claim")) j.consumer_claim = *v;
  j.consumer_header = header_option(f, "consumer_header", j.consumer_header);
  if (auto v = f.boolean("strip")) j.strip = *v;
  if (auto v = f.str("realm")) j.realm = *v;
  f.str("bearer_format"); // informational, from OpenAPI
  if (canonical) {
    canonical->erase("public_key_file");
    canonical->erase("jwks_file");
    if (!j.pems.empty()) (*canonical)["public_keys"] = j.pems;
    if (!j.jwks.empty()) (*canonical)["jwks"] = j.jwks;
    if (!j.secret_file.empty()) (*canonical)["secret_file"] = j.secret_file;
  }
  return j;
}

// ---- access, any_of

Access read_access(Fields& f) {
  Access a;
  if (auto v = f.strings("scopes")) a.scopes = *v;
  if (const json* c = f.get("claims")) {
    if (!c->is_object()) {
      f.error("claims", "claims must be a table: claim = \"value\" or [\"values\"]");
    } else {
      for (auto it = c->begin(); it != c->end(); ++it) {
        std::vector<std::string> values;
        if (it.value().is_string())
          values.push_back(it.value().get<std::string>());
        else if (it.value().is_array() && std::all_of(it.value().begin(), it.value().end(),
                                                      [](const json& e) { return e.is_string(); }))
          for (const auto& e : it.value())
            values.push_back(e.get<std::string>());
        else {
          f.error("claims", "claims." + it.key() + " must be a string or an array of strings");
          continue;
        }
        a.claims.emplace_back(it.key(), std::move(values));
      }
    }
  }
  if (auto v = f.strings("consumers")) a.consumers = *v;
  if (auto v = f.strings("deny_consumers")) a.deny_consumers = *v;
  if (a.scopes.empty() && a.claims.empty() && a.consumers.empty() && a.deny_consumers.empty() &&
      f.ok())
    f.error("", "checks nothing: give scopes, claims, consumers or deny_consumers");
  return a;
}

AnyOf read_any_of(Fields& f) {
  AnyOf a;
  const json* opts = f.get("options");
  if (!opts || !opts->is_array() || opts->empty()) {
    f.error("options", "options must be a non-empty array of { policies = [...], scopes = [...] }");
    return a;
  }
  std::size_t i = 0;
  for (const auto& o : *opts) {
    ++i;
    AnyOf::Option opt;
    bool good = o.is_object();
    if (good) {
      for (auto it = o.begin(); it != o.end(); ++it) {
        const bool list =
            it.value().is_array() && std::all_of(it.value().begin(), it.value().end(),
                                                 [](const json& e) { return e.is_string(); });
        if (it.key() == "policies" && list)
          opt.policies = it.value().get<std::vector<std::string>>();
        else if (it.key() == "scopes" && list)
          opt.scopes = it.value().get<std::vector<std::string>>();
        else
          good = false;
      }
    }
    if (!good) {
      f.error("options", "options[" + std::to_string(i) +
                             "] must be { policies = [\"name\", ...], scopes = [\"scope\", ...] }");
      continue;
    }
    a.options.push_back(std::move(opt));
  }
  return a;
}

// ---- rate_limit

RateLimit read_rate_limit(Fields& f) {
  RateLimit r;
  if (auto rate = f.str("rate")) {
    // "100/s", "6000/m", "10/h", or "5/10s"
    const auto slash = rate->find('/');
    std::uint64_t n = 0;
    const auto* b = rate->data();
    const auto res = std::from_chars(b, b + (slash == std::string::npos ? rate->size() : slash), n);
    bool good = slash != std::string::npos && res.ptr == b + slash && n > 0 && n <= 1'000'000'000;
    if (good) {
      std::string per = rate->substr(slash + 1);
      if (per == "s" || per == "m" || per == "h") per = "1" + per;
      auto d = units::parse_duration(per);
      good = d && d->count() > 0;
      if (good) r.per = *d;
    }
    if (!good)
      f.error("rate", "rate " + text::quote(*rate) +
                          " must be COUNT/UNIT: \"100/s\", \"6000/m\", \"10/h\" or \"5/10s\"");
    r.count = n;
  } else {
    f.error("rate", "has no rate (\"100/s\")", "spec.missing-key");
  }
  if (auto v = f.integer("burst", 1, 1'000'000'000))
    r.burst = static_cast<std::uint64_t>(*v);
  else
    r.burst = r.count;
  if (auto key = f.str("key")) {
    if (*key == "client_ip")
      r.key = RateLimit::Key::client_ip;
    else if (*key == "consumer")
      r.key = RateLimit::Key::consumer;
    else if (*key == "route")
      r.key = RateLimit::Key::route;
    else if (*key == "global")
      r.key = RateLimit::Key::global;
    else if (key->starts_with("header:") && text::is_token(key->substr(7))) {
      r.key = RateLimit::Key::header;
      r.key_name = text::lower(key->substr(7));
    } else if (key->starts_with("claim:") && key->size() > 6) {
      r.key = RateLimit::Key::claim;
      r.key_name = key->substr(6);
    } else {
      f.error("key", "key " + text::quote(*key) +
                         " must be client_ip, consumer, route, global, header:NAME or claim:NAME");
    }
  }
  if (auto store = f.str("store")) {
    if (*store == "redis")
      r.redis = true;
    else if (*store != "local")
      f.error("store", "store must be \"local\" or \"redis\"");
  }
  if (auto addr = f.str("redis")) {
    // An IP literal: hiredis resolves a host name with a blocking getaddrinfo, which must never
    // sit on a worker's request path. IPv6 goes in brackets ("[::1]:6379"); the port defaults
    // to 6379.
    std::string_view a = *addr, host = a, port_text;
    bool v6 = false, good = true;
    if (a.starts_with('[')) {
      const auto close = a.find(']');
      v6 = true;
      good = close != std::string_view::npos &&
             (close + 1 == a.size() || (a[close + 1] == ':' && close + 2 < a.size()));
      if (good) {
        host = a.substr(1, close - 1);
        if (close + 1 < a.size()) port_text = a.substr(close + 2);
      }
    } else if (const auto colon = a.rfind(':'); colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port_text = a.substr(colon + 1);
      good = !port_text.empty();
    }
    unsigned port = r.redis_port;
    if (good && !port_text.empty()) {
      const auto* end = port_text.data() + port_text.size();
      const auto res = std::from_chars(port_text.data(), end, port);
      good = res.ec == std::errc{} && res.ptr == end && port > 0 && port < 65536;
    }
    unsigned char ip[16];
    good = good && ::inet_pton(v6 ? AF_INET6 : AF_INET, std::string(host).c_str(), ip) == 1;
    if (!good)
      f.error("redis", "redis must be \"IP:PORT\" with an IP address, not a host name "
                       "(\"127.0.0.1:6379\", \"[::1]:6379\")");
    r.redis_host = host;
    r.redis_port = static_cast<std::uint16_t>(port);
    if (!f.has("store")) r.redis = true;
  }
  if (r.redis && r.redis_host.empty() && f.ok())
    f.error("store", "store = \"redis\" needs redis = \"IP:PORT\"");
  if (auto v = f.duration("redis_timeout")) r.redis_timeout = *v;
  if (auto v = f.str("on_redis_error")) {
    if (*v == "allow")
      r.fail_open = true;
    else if (*v == "deny")
      r.fail_open = false;
    else
      f.error("on_redis_error",
              "on_redis_error must be \"allow\" (fail open) or \"deny\" (fail closed)");
  }
  if (!r.redis && (f.has("redis_timeout") || f.has("on_redis_error")) && f.ok())
    f.error(f.has("redis_timeout") ? "redis_timeout" : "on_redis_error",
            "applies only with store = \"redis\"");
  if (r.count && r.interval_us() == 0)
    f.error("rate", "rate is too high: more than one request per microsecond");
  // The buckets keep times in nanoseconds: a bucket that takes more than a year to fill is surely
  // a mistake, and far beyond that burst × interval overflows.
  constexpr std::int64_t kMaxBucketUs = 366LL * 24 * 3600 * 1'000'000;
  if (r.count && r.burst && r.interval_us() > 0 &&
      r.burst > static_cast<std::uint64_t>(kMaxBucketUs / r.interval_us()))
    f.error("burst",
            "burst " + std::to_string(r.burst) + " at this rate takes more than a year to refill");
  return r;
}

// ---- headers, cors

HeaderOps read_ops(Fields& f, std::string_view key) {
  HeaderOps ops;
  const json* v = f.get(key);
  if (!v) return ops;
  if (!v->is_object()) {
    f.error(key,
            std::string(key) +
                " must be a table: { set = {...}, add = {...}, remove = [...], rename = {...} }");
    return ops;
  }
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string label = std::string(key) + "." + it.key();
    if (it.key() == "remove") {
      if (!it.value().is_array() || !std::all_of(it.value().begin(), it.value().end(),
                                                 [](const json& e) { return e.is_string(); })) {
        f.error(key, label + " must be an array of header names");
        continue;
      }
      for (const auto& n : it.value()) {
        if (!text::is_token(n.get<std::string>()))
          f.error(key, text::quote(n.get<std::string>()) + " is not a header name");
        ops.remove.push_back(text::lower(n.get<std::string>()));
      }
    } else if (it.key() == "set" || it.key() == "add" || it.key() == "rename") {
      auto t = f.string_table(key, &it.value(), label);
      if (!t) continue;
      auto& dst = it.key() == "set" ? ops.set : it.key() == "add" ? ops.add : ops.rename;
      for (auto& [name, value] : *t) {
        if (!text::is_token(name)) f.error(key, text::quote(name) + " is not a header name");
        if (it.key() == "rename" ? !text::is_token(value) : !valid_header_value(value))
          f.error(key, label + "." + name + ": " + text::quote(value) + " is not a valid " +
                           (it.key() == "rename" ? "header name" : "header value"));
        dst.emplace_back(text::lower(name), it.key() == "rename" ? text::lower(value) : value);
      }
    } else {
      f.error(key, "unknown operation " + text::quote(label) + " (set, add, remove, rename)");
    }
  }
  // Hop-by-hop and framing headers belong to the proxy, not to transforms.
  auto forbidden = [](const std::string& n) { return managed_by_proxy(n); };
  for (const auto* list : {&ops.set, &ops.add, &ops.rename})
    for (const auto& [n, to] : *list)
      if (forbidden(n) || (list == &ops.rename && forbidden(to)))
        f.error(key, text::quote(forbidden(n) ? n : to) +
                         " is managed by the proxy and cannot be changed here");
  for (const auto& n : ops.remove)
    if (forbidden(n))
      f.error(key, text::quote(n) + " is managed by the proxy and cannot be removed here");
  return ops;
}

Headers read_headers(Fields& f) {
  Headers h;
  h.request = read_ops(f, "request");
  h.response = read_ops(f, "response");
  if (const json* q = f.get("query")) {
    if (!q->is_object()) {
      f.error("query", "query must be a table: { set = {...}, remove = [...] }");
    } else {
      for (auto it = q->begin(); it != q->end(); ++it) {
        if (it.key() == "set") {
          if (auto t = f.string_table("query", &it.value(), "query.set")) h.query_set = *t;
        } else if (it.key() == "remove" && it.value().is_array() &&
                   std::all_of(it.value().begin(), it.value().end(),
                               [](const json& e) { return e.is_string(); })) {
          h.query_remove = it.value().get<std::vector<std::string>>();
        } else {
          f.error("query", "query." + it.key() +
                               ": expected set = { name = \"value\" } or remove = [\"name\"]");
        }
      }
    }
  }
  if (h.request.empty() && h.response.empty() && h.query_set.empty() && h.query_remove.empty() &&
      f.ok())
    f.error("", "changes nothing: give request, response or query");
  return h;
}

Cors read_cors(Fields& f) {
  Cors c;
  if (auto v = f.strings("origins")) {
    for (const auto& o : *v) {
      if (o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        f.error("origins", "origin " + text::quote(o) + " must be \"*\" or scheme://host[:port]");
      else if (o != "*" && o.find('/', o.find("://") + 3) != std::string::npos)
        f.error("origins",
                "origin " + text::quote(o) + " has a path; origins are scheme://host[:port]");
      c.origins.push_back(text::lower(o));
    }
  } else {
    f.error("origins", "has no origins (\"https://app.example.com\", or \"*\")",
            "spec.missing-key");
  }
  c.methods = {"GET", "HEAD", "POST"};
  if (auto v = f.strings("methods")) {
    c.methods = *v;
    // Browsers send the method in upper case, and CORS compares it exactly.
    for (const auto& m : c.methods)
      if (m.empty() ||
          !std::all_of(m.begin(), m.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
        f.error("methods",
                "method " + text::quote(m) + " must be an upper-case method name, e.g. \"PUT\"");
  }
  if (auto v = f.strings("headers"))
    for (const auto& h : *v)
      c.headers.push_back(text::lower(h));
  if (auto v = f.strings("expose_headers"))
    for (const auto& h : *v)
      c.expose.push_back(text::lower(h));
  if (auto v = f.boolean("credentials")) c.credentials = *v;
  if (auto v = f.duration("max_age")) c.max_age = *v;
  if (c.credentials && std::find(c.origins.begin(), c.origins.end(), "*") != c.origins.end())
    f.error("credentials",
            "credentials = true cannot be combined with origin \"*\" (browsers refuse it)");
  return c;
}

std::optional<Settings> read(Kind kind, const json& j, Fields& f, json* canonical) {
  f.kind_ = std::string(name(kind));
  if (!j.is_object()) {
    f.error("", "settings must be a table");
    return std::nullopt;
  }
  Settings s;
  switch (kind) {
  case Kind::api_key:
    s = read_api_key(f, canonical);
    break;
  case Kind::basic:
    s = read_basic(f, canonical);
    break;
  case Kind::jwt:
    s = read_jwt(f, canonical);
    break;
  case Kind::access:
    s = read_access(f);
    break;
  case Kind::any_of:
    s = read_any_of(f);
    break;
  case Kind::rate_limit:
    s = read_rate_limit(f);
    break;
  case Kind::headers:
    s = read_headers(f);
    break;
  case Kind::cors:
    s = read_cors(f);
    break;
  }
  f.finish();
  if (!f.ok()) return std::nullopt;
  return s;
}

} // namespace

std::optional<Kind> kind_from_name(std::string_view s) noexcept {
  for (std::size_t i = 0; i < kKindNames.size(); ++i)
    if (kKindNames[i] == s) return static_cast<Kind>(i);
  return std::nullopt;
}
std::string_view name(Kind k) noexcept {
  return kKindNames[static_cast<std::size_t>(k)];
}
std::span<const std::string_view> kind_names() noexcept {
  return kKindNames;
}

Phase phase_of(Kind k) noexcept {
  switch (k) {
  case Kind::cors:
    return Phase::cors;
  case Kind::api_key:
  case Kind::basic:
  case Kind::jwt:
  case Kind::any_of:
    return Phase::authenticate;
  case Kind::access:
    return Phase::access;
  case Kind::rate_limit:
    return Phase::rate_limit;
  case Kind::headers:
    return Phase::transform;
  }
  return Phase::transform;
}

bool authenticates(Kind k) noexcept {
  return phase_of(k) == Phase::authenticate;
}

std::optional<nlohmann::json> compile(Kind kind, const nlohmann::json& settings, const Context& ctx,
                                      Diagnostics& diags) {
  Fields f(settings, ctx, &diags);
  json canonical = settings;
  if (!read(kind, settings, f, &canonical)) return std::nullopt;
  return canonical;
}

Result<Settings> parse(Kind kind, std::string_view canonical) {
  const json j = json::parse(canonical, nullptr, false);
  Context ctx;
  Fields f(j, ctx, nullptr);
  auto s = read(kind, j, f, nullptr);
  if (!s)
    return fail(errc::invalid_argument,
                f.first_error().empty() ? "bad policy settings" : f.first_error());
  return std::move(*s);
}

Result<std::string> read_hmac_secret(const std::string& env_name, const std::string& file) {
  constexpr std::uint64_t kMaxSecret = 64 * 1024;
  if (!env_name.empty()) {
    const char* v = std::getenv(env_name.c_str());
    if (!v || !*v) return fail(errc::not_found, "environment variable " + env_name + " is not set");
    return std::string(v);
  }
  if (file.empty()) return fail(errc::invalid_argument, "no HMAC secret given");
  auto secret = file::read_all(file, kMaxSecret);
  if (!secret)
    return std::unexpected(Error(secret.error().code, "secret file " + text::quote(file) + ": " +
                                                          secret.error().message));
  while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r'))
    secret->pop_back();
  if (secret->empty())
    return fail(errc::invalid_argument, "secret file " + text::quote(file) + " is empty");
  return secret;
}

std::string key_file_line(std::string_view consumer, std::string_view key) {
  return std::string(consumer) + " sha256:" + to_hex(sha256(key));
}

} // namespace gw::policy
