// jwt: JSON Web Tokens (RFC 7519) signed with keys from PEM, a JWKS, a JWKS URL or an HMAC
// secret; the JWS work is policy/jwt.hpp's.
#include <algorithm>
#include <filesystem>

#include "gw/core/file.hpp"
#include "gw/policy/jwt.hpp"
#include "gw/policy/kinds.hpp"
#include "gw/policy/registry.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/authenticator.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "jwt";

constexpr std::string_view kSchema = R"json({
  "header": {
    "description": "Request header carrying the token (default: Authorization: Bearer); one name or a list.",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "query": {
    "description": "Query parameter carrying the token (one name or a list); kept out of access logs.",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "cookie": {
    "description": "Cookie carrying the token (one name or a list).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "public_keys": {
    "description": "PEM public keys (RSA, EC, Ed25519) embedded inline.",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "public_key_file": {
    "description": "PEM file of a public key (one or a list), relative to the spec; embedded at compile time.",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "jwks": {"description": "An inline JWKS document (JSON text).", "type": "string"},
  "jwks_file": {
    "description": "A JWKS file, relative to the spec; embedded at compile time.",
    "type": "string"
  },
  "jwks_url": {
    "description": "JWKS URL fetched by gwd in the background and refreshed (kid rotation).",
    "type": "string"
  },
  "openid_connect_url": {
    "description": "OpenID Connect discovery URL; its jwks_uri is fetched like jwks_url.",
    "type": "string"
  },
  "jwks_refresh": {
    "description": "How often the JWKS is refreshed, e.g. \"5m\" (default; at least 100ms).",
    "type": "string"
  },
  "secret_env": {
    "description": "Environment variable holding the HMAC secret (HS256/384/512), read by gwd at load; never stored in the table.",
    "type": "string"
  },
  "secret_file": {
    "description": "File holding the HMAC secret, read by gwd at load; never stored in the table.",
    "type": "string"
  },
  "algorithms": {
    "description": "Accepted `alg` values (HS256..512, RS256..512, PS256..512, ES256, ES384, EdDSA); `none` is never accepted. Default: those the keys can check.",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "issuer": {
    "description": "Required `iss` (one or a list).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "audience": {
    "description": "Required `aud`, any of these (one or a list).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "leeway": {
    "description": "Clock skew allowed on exp and nbf, e.g. \"30s\" (default).",
    "type": "string"
  },
  "require_exp": {"description": "Refuse tokens without `exp` (default true).", "type": "boolean"},
  "forward_claims": {
    "description": "Claims to forward as request headers, CLAIM = \"header-name\".",
    "type": "object", "additionalProperties": {"type": "string"}
  },
  "consumer_claim": {"description": "Claim naming the consumer (default sub).", "type": "string"},
  "consumer_header": {
    "description": "Header that tells the upstream who the consumer is (default x-consumer; \"\" for none).",
    "type": "string"
  },
  "strip": {
    "description": "Remove the token before forwarding (default false: backends often want it).",
    "type": "boolean"
  },
  "realm": {"description": "Realm in WWW-Authenticate (default gw).", "type": "string"},
  "bearer_format": {
    "description": "Informational token format for documentation (from OpenAPI).",
    "type": "string"
  }
})json";

bool http_url(std::string_view u) {
  return u.starts_with("http://") || u.starts_with("https://");
}

Jwt read(Fields& f, json* canonical) {
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

/// Keys fetched by a KeySource are shared with it; the rest are this generation's. Any thread.
class JwtFilter final : public Authenticator {
public:
  JwtFilter(Jwt s, std::vector<jwt::Key> keys, std::shared_ptr<KeySource> source)
      : s_(std::move(s)), keys_(std::move(keys)), source_(std::move(source)) {
    for (const auto& a : s_.algorithms)
      if (auto alg = jwt::alg_from_name(a)) algs_.push_back(*alg);
    rules_.issuers = s_.issuers;
    rules_.audiences = s_.audiences;
    rules_.leeway_s = s_.leeway_s;
    rules_.require_exp = s_.require_exp;
  }
  Outcome authenticate(const RequestView& req, std::int64_t now_s) const override {
    Outcome o;
    auto cred = find_credential(req, s_.from);
    if (!cred) return o;
    o.from = cred->second;
    std::string_view token = cred->first;
    if (o.from->in == Credential::In::header) {
      if (token.size() >= 7 && text::iequals(token.substr(0, 7), "bearer "))
        token.remove_prefix(7);
      else if (o.from->name == "authorization")
        return o; // another scheme: not ours
      while (!token.empty() && token.front() == ' ')
        token.remove_prefix(1);
    }
    o.status = Status::invalid;
    auto t = jwt::decode(token);
    if (!t) {
      o.why = t.error().code == make_error_code(errc::unsupported) ? "unsupported token algorithm"
                                                                   : "malformed token";
      return o;
    }
    if (std::find(algs_.begin(), algs_.end(), t->alg) == algs_.end()) {
      o.why = "algorithm not allowed";
      return o;
    }
    bool verified = false, kid_known = t->kid.empty();
    auto try_keys = [&](const std::vector<jwt::Key>& keys) {
      for (const auto& k : keys) {
        if (!t->kid.empty() && !k.kid().empty() && k.kid() != t->kid) continue;
        if (!t->kid.empty() && k.kid() == t->kid) kid_known = true;
        if (jwt::verify(*t, k)) {
          verified = true;
          return;
        }
      }
    };
    try_keys(keys_);
    std::shared_ptr<const std::vector<jwt::Key>> fetched;
    if (!verified && source_) {
      fetched = source_->keys();
      if (fetched) try_keys(*fetched);
      // A rotated key the source has not seen yet, or no keys at all yet (the first fetch
      // failed): a token without a kid must not wait for the next scheduled refresh either.
      if (!kid_known || !fetched || fetched->empty()) source_->refresh_soon();
    }
    if (!verified) {
      o.why = "invalid signature";
      return o;
    }
    if (auto why = jwt::check_claims(t->claims, rules_, now_s)) {
      o.why = *why;
      return o;
    }
    o.status = Status::ok;
    if (auto it = t->claims.find(s_.consumer_claim); it != t->claims.end())
      o.consumer = claim_text(*it);
    o.claims = std::move(t->claims);
    return o;
  }
  std::string challenge(const Outcome& o) const override {
    std::string c = "Bearer realm=" + qstr(s_.realm);
    if (o.status == Status::invalid)
      c += ", error=\"invalid_token\", error_description=" + qstr(o.why);
    return c;
  }
  void apply(const Outcome& o, Edits& e) const override {
    if (s_.strip && o.from) strip_credential(*o.from, e);
    if (!s_.consumer_header.empty() && !o.consumer.empty() && header_safe(o.consumer))
      e.set_once(s_.consumer_header, o.consumer);
    for (const auto& [claim, header] : s_.forward_claims) {
      auto it = o.claims.find(claim);
      if (it == o.claims.end()) continue;
      std::string v = claim_text(*it);
      if (header_safe(v)) e.set_once(header, std::move(v));
    }
  }

protected:
  void protect(std::vector<std::string>& names) const override {
    if (!s_.consumer_header.empty()) names.push_back(s_.consumer_header);
    for (const auto& [claim, header] : s_.forward_claims)
      names.push_back(header);
  }
  std::span<const Credential> credentials() const noexcept override { return s_.from; }

private:
  Jwt s_;
  std::vector<jwt::Key> keys_;
  std::shared_ptr<KeySource> source_;
  std::vector<jwt::Alg> algs_;
  jwt::ClaimRules rules_;
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<Jwt>(kName, &read, settings, ctx, diags);
}

Result<std::shared_ptr<const Filter>> build(const BuildContext& ctx) {
  auto j = parse<Jwt>(ctx.settings, ctx.policy);
  if (!j) return std::unexpected(j.error());
  const std::string who = "policy " + text::quote(ctx.policy) + ": ";
  std::vector<jwt::Key> keys;
  for (const auto& pem : j->pems) {
    auto k = jwt::Key::from_pem(pem);
    if (!k) return fail(errc::invalid_argument, who + k.error().message);
    keys.push_back(std::move(*k));
  }
  if (!j->jwks.empty()) {
    auto ks = jwt::parse_jwks(j->jwks);
    if (!ks) return fail(errc::invalid_argument, who + ks.error().message);
    for (auto& k : ks->keys)
      keys.push_back(std::move(k));
  }
  // HMAC secrets stay out of tables: read them now, at every load.
  std::string secret;
  if (!j->secret_env.empty() || !j->secret_file.empty()) {
    auto read = read_hmac_secret(j->secret_env, j->secret_file);
    if (!read) return std::unexpected(Error(read.error().code, who + read.error().message));
    secret = std::move(*read);
  }
  if (!secret.empty()) {
    auto k = jwt::Key::from_secret(std::move(secret));
    if (!k) return fail(errc::invalid_argument, who + k.error().message);
    keys.push_back(std::move(*k));
  }
  std::shared_ptr<KeySource> source;
  const std::string& url = j->jwks_url.empty() ? j->openid_connect_url : j->jwks_url;
  if (!url.empty()) {
    if (!ctx.registry || !ctx.registry->key_source)
      return fail(errc::unsupported, who + "key URLs need gwd");
    source = ctx.registry->key_source(url, j->jwks_url.empty(), j->jwks_refresh);
  }
  return std::make_shared<const JwtFilter>(std::move(*j), std::move(keys), std::move(source));
}

} // namespace

template <>
Result<Jwt> parse<Jwt>(std::string_view canonical, std::string_view policy) {
  return parse_with<Jwt>(kName, &read, canonical, policy);
}

constexpr KindInfo kJwtKind{
    .name = kName,
    .phase = Phase::authenticate,
    .authenticates = true,
    .composite = false,
    .schema = kSchema,
    .compile = &compile,
    .build = &build,
    .needs_identity = nullptr,
    .references = nullptr,
    .carries_claims = true,
};

} // namespace gw::policy
