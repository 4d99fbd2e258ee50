#include "gw/policy/chain.hpp"

#include <algorithm>
#include <crypt.h>
#include <set>
#include <span>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gw/core/sha256.hpp"
#include "gw/core/text.hpp"
#include "gw/model/config.hpp"
#include "gw/uri/normalize.hpp"

namespace gw::policy {

namespace {

/// The first credential present, and where it came from.
std::optional<std::pair<std::string, const Credential*>>
find_credential(const RequestView& req, const std::vector<Credential>& from) {
  for (const auto& c : from) {
    switch (c.in) {
    case Credential::In::header:
      if (auto v = req.header(c.name)) return std::pair{std::string(*v), &c};
      break;
    case Credential::In::query: {
      std::optional<std::string> found;
      uri::for_each_query_param(req.query(), [&](std::string_view n, std::string_view v) {
        if (n != c.name) return true;
        found = std::string(v);
        return false;
      });
      if (found) return std::pair{std::move(*found), &c};
      break;
    }
    case Credential::In::cookie:
      if (auto h = req.header("cookie"))
        if (auto v = text::cookie_value(*h, c.name)) return std::pair{std::string(*v), &c};
      break;
    }
  }
  return std::nullopt;
}

void strip_credential(const Credential& c, Edits& e) {
  switch (c.in) {
  case Credential::In::header:
    e.drop.push_back(c.name);
    break;
  case Credential::In::query:
    e.drop_query.push_back(c.name);
    break;
  case Credential::In::cookie:
    e.drop_cookies.push_back(c.name);
    break;
  }
}

std::string qstr(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + '"';
}

std::string claim_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

bool header_safe(std::string_view v) {
  return std::none_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

/// Sets an identity header unless an earlier authenticator on the route already did: the first
/// one names the caller (as in Identity), and the upstream must never see two different values.
void set_once(Edits& e, const std::string& name, std::string value) {
  e.set_once(name, std::move(value));
}

} // namespace

// ---- authenticators

class Authenticator {
public:
  enum class Status : std::uint8_t { ok, missing, invalid };
  struct Outcome {
    Status status = Status::missing;
    std::string consumer;
    nlohmann::json claims;
    std::string why; // for invalid credentials: short, no secrets
    const Credential* from = nullptr;
  };
  virtual ~Authenticator() = default;
  virtual Outcome authenticate(const RequestView& req, std::int64_t now_s) const = 0;
  /// The WWW-Authenticate value for a failure.
  virtual std::string challenge(const Outcome& o) const = 0;
  /// Identity headers the caller may not set themselves (the gateway sets them).
  /// Adds the headers this authenticator sets, which only the gateway may send.
  virtual void protect(std::vector<std::string>& names) const = 0;
  /// Where it reads its credential (none: Basic reads Authorization).
  virtual std::span<const Credential> credentials() const noexcept { return {}; }
  /// What a success changes in the forwarded request.
  virtual void apply(const Outcome& o, Edits& e) const = 0;
};

namespace {

class ApiKeyAuth final : public Authenticator {
public:
  explicit ApiKeyAuth(ApiKey s) : s_(std::move(s)) {}
  Outcome authenticate(const RequestView& req, std::int64_t) const override {
    Outcome o;
    auto cred = find_credential(req, s_.from);
    if (!cred) return o;
    o.from = cred->second;
    const Sha256 d = sha256(cred->first);
    auto it = std::lower_bound(s_.keys.begin(), s_.keys.end(), d,
                               [](const auto& kv, const Sha256& x) { return kv.first < x; });
    // The map lookup compares digests, not keys; the final check is constant-time anyway.
    if (it == s_.keys.end() || CRYPTO_memcmp(it->first.data(), d.data(), d.size()) != 0) {
      o.status = Status::invalid;
      o.why = "unknown API key";
      return o;
    }
    o.status = Status::ok;
    o.consumer = it->second;
    return o;
  }
  std::string challenge(const Outcome&) const override {
    const auto& c = s_.from.front();
    const char* in = c.in == Credential::In::header  ? "header"
                     : c.in == Credential::In::query ? "query"
                                                     : "cookie";
    return "ApiKey realm=" + qstr(s_.realm) + ", in=\"" + in + "\", name=" + qstr(c.name);
  }
  void protect(std::vector<std::string>& names) const override {
    if (!s_.consumer_header.empty()) names.push_back(s_.consumer_header);
  }
  std::span<const Credential> credentials() const noexcept override { return s_.from; }
  void apply(const Outcome& o, Edits& e) const override {
    if (s_.strip && o.from) strip_credential(*o.from, e);
    if (!s_.consumer_header.empty()) set_once(e, s_.consumer_header, o.consumer);
  }

private:
  ApiKey s_;
};

class BasicAuth final : public Authenticator {
public:
  explicit BasicAuth(Basic s) : s_(std::move(s)) {}
  Outcome authenticate(const RequestView& req, std::int64_t) const override {
    Outcome o;
    auto h = req.header("authorization");
    if (!h || h->size() < 6 || !text::iequals(h->substr(0, 6), "basic ")) return o;
    o.status = Status::invalid;
    o.why = "bad credentials";
    std::string_view b64 = h->substr(6);
    while (!b64.empty() && b64.front() == ' ')
      b64.remove_prefix(1);
    if (b64.empty() || b64.size() > 4096 || b64.size() % 4 != 0) return o;
    std::string raw(b64.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                                  reinterpret_cast<const unsigned char*>(b64.data()),
                                  static_cast<int>(b64.size()));
    if (n < 0) return o;
    raw.resize(static_cast<std::size_t>(n) - (b64.ends_with("==")  ? 2
                                              : b64.ends_with("=") ? 1
                                                                   : 0));
    const auto colon = raw.find(':');
    if (colon == std::string::npos) return o;
    const std::string user = raw.substr(0, colon), pass = raw.substr(colon + 1);
    auto it = std::lower_bound(s_.users.begin(), s_.users.end(), user,
                               [](const auto& kv, const std::string& u) { return kv.first < u; });
    if (it == s_.users.end() || it->first != user) {
      // The same crypt work as for a known name, so response times do not reveal user names.
      if (!s_.users.empty()) {
        thread_local crypt_data data{};
        (void)crypt_rn(pass.c_str(), s_.users.front().second.c_str(), &data, sizeof data);
      }
      return o;
    }
    if (!check(user, pass, it->second)) return o;
    o.status = Status::ok;
    o.consumer = user;
    o.why.clear();
    return o;
  }
  std::string challenge(const Outcome&) const override {
    return "Basic realm=" + qstr(s_.realm) + ", charset=\"UTF-8\"";
  }
  void protect(std::vector<std::string>& names) const override {
    if (!s_.consumer_header.empty()) names.push_back(s_.consumer_header);
  }
  void apply(const Outcome& o, Edits& e) const override {
    if (s_.strip) e.drop.push_back("authorization");
    if (!s_.consumer_header.empty()) set_once(e, s_.consumer_header, o.consumer);
  }

private:
  /// crypt(3) is slow on purpose (bcrypt, SHA-crypt); a verified credential is remembered by its
  /// digest so a client's later requests cost one SHA-256.
  bool check(const std::string& user, const std::string& pass, const std::string& hash) const {
    const Sha256 key = sha256(user + '\0' + pass + '\0' + hash);
    {
      std::lock_guard lock(mu_);
      if (verified_.count(key)) return true;
    }
    thread_local crypt_data data{};
    const char* out = crypt_rn(pass.c_str(), hash.c_str(), &data, sizeof data);
    const bool ok = out && std::string_view(out).size() == hash.size() &&
                    CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
    if (ok) {
      std::lock_guard lock(mu_);
      if (verified_.size() >= 10'000) verified_.clear();
      verified_.insert(key);
    }
    return ok;
  }
  Basic s_;
  mutable std::mutex mu_;
  mutable std::set<Sha256> verified_;
};

class JwtAuth final : public Authenticator {
public:
  JwtAuth(Jwt s, std::vector<jwt::Key> keys, std::shared_ptr<KeySource> source)
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
  void protect(std::vector<std::string>& names) const override {
    if (!s_.consumer_header.empty()) names.push_back(s_.consumer_header);
    for (const auto& [claim, header] : s_.forward_claims)
      names.push_back(header);
  }
  std::span<const Credential> credentials() const noexcept override { return s_.from; }
  void apply(const Outcome& o, Edits& e) const override {
    if (s_.strip && o.from) strip_credential(*o.from, e);
    if (!s_.consumer_header.empty() && !o.consumer.empty() && header_safe(o.consumer))
      set_once(e, s_.consumer_header, o.consumer);
    for (const auto& [claim, header] : s_.forward_claims) {
      auto it = o.claims.find(claim);
      if (it == o.claims.end()) continue;
      std::string v = claim_text(*it);
      if (header_safe(v)) set_once(e, header, std::move(v));
    }
  }

private:
  Jwt s_;
  std::vector<jwt::Key> keys_;
  std::shared_ptr<KeySource> source_;
  std::vector<jwt::Alg> algs_;
  jwt::ClaimRules rules_;
};

bool has_all(const std::vector<std::string>& granted, const std::vector<std::string>& wanted) {
  return std::all_of(wanted.begin(), wanted.end(), [&](const std::string& s) {
    return std::find(granted.begin(), granted.end(), s) != granted.end();
  });
}

bool origin_allowed(const Cors& c, std::string_view origin) {
  return std::any_of(c.origins.begin(), c.origins.end(),
                     [&](const std::string& o) { return o == "*" || text::iequals(o, origin); });
}

void cors_headers(const Cors& c, std::string_view origin, HeaderList& out) {
  const bool any = std::find(c.origins.begin(), c.origins.end(), "*") != c.origins.end();
  out.emplace_back("access-control-allow-origin",
                   std::string(any && !c.credentials ? std::string_view("*") : origin));
  out.emplace_back("vary", "origin");
  if (c.credentials) out.emplace_back("access-control-allow-credentials", "true");
  if (!c.expose.empty()) out.emplace_back("access-control-expose-headers", text::join(c.expose, ", "));
}

void append(HeaderList& to, const HeaderList& from) { to.insert(to.end(), from.begin(), from.end()); }

/// Appends `b`'s operations to `a` as if `b` ran after `a`: a later remove or set of a name
/// replaces an earlier set or add of it.
void append_ops(HeaderOps& a, const HeaderOps& b) {
  auto undo = [&](const std::string& n) {
    std::erase_if(a.set, [&](const auto& kv) { return kv.first == n; });
    std::erase_if(a.add, [&](const auto& kv) { return kv.first == n; });
  };
  for (const auto& n : b.remove) {
    undo(n);
    a.remove.push_back(n);
  }
  for (const auto& kv : b.set) {
    undo(kv.first);
    a.set.push_back(kv);
  }
  a.add.insert(a.add.end(), b.add.begin(), b.add.end());
  a.rename.insert(a.rename.end(), b.rename.begin(), b.rename.end());
}

/// Adds a headers policy after those already in `t`.
void add_transform(Transform& t, const Headers& h) {
  append_ops(t.request, h.request);
  append_ops(t.response, h.response);
  HeaderOps query;
  query.set = h.query_set;
  query.remove = h.query_remove;
  append_ops(t.query, query);
}

} // namespace

// ---- Edits, scopes

std::vector<std::string> scopes_of(const nlohmann::json& claims) {
  std::vector<std::string> out;
  if (!claims.is_object()) return out;
  auto split = [&](const std::string& s) {
    std::size_t pos = 0;
    while (pos < s.size()) {
      const auto sp = s.find(' ', pos);
      if (sp != pos)
        out.push_back(s.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos));
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
  };
  for (const char* key : {"scope", "scp"}) {
    auto it = claims.find(key);
    if (it == claims.end()) continue;
    if (it->is_string())
      split(it->get<std::string>());
    else if (it->is_array())
      for (const auto& s : *it)
        if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

// ---- RoutePolicies

Refusal RoutePolicies::preflight(const RequestView& req) const {
  Refusal r;
  const auto origin = req.header("origin");
  const auto method = req.header("access-control-request-method");
  if (!cors_ || !origin || !method || !origin_allowed(*cors_, *origin) ||
      std::find(cors_->methods.begin(), cors_->methods.end(), *method) == cors_->methods.end()) {
    r.status = 403;
    r.message = "CORS preflight refused: origin or method not allowed";
    return r;
  }
  if (auto asked = req.header("access-control-request-headers")) {
    const bool any =
        std::find(cors_->headers.begin(), cors_->headers.end(), "*") != cors_->headers.end();
    std::string_view rest = *asked;
    while (!any && !rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view h = rest.substr(0, comma);
      while (!h.empty() && h.front() == ' ')
        h.remove_prefix(1);
      while (!h.empty() && h.back() == ' ')
        h.remove_suffix(1);
      if (!h.empty() && std::none_of(cors_->headers.begin(), cors_->headers.end(),
                                     [&](const std::string& a) { return text::iequals(a, h); })) {
        r.status = 403;
        r.message = "CORS preflight refused: header " + std::string(h) + " not allowed";
        return r;
      }
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  r.status = 204;
  cors_headers(*cors_, *origin, r.headers);
  r.headers.emplace_back("access-control-allow-methods", text::join(cors_->methods, ", "));
  if (auto asked = req.header("access-control-request-headers"); asked && !asked->empty())
    r.headers.emplace_back("access-control-allow-headers", std::string(*asked));
  r.headers.emplace_back("access-control-max-age", std::to_string(cors_->max_age.count() / 1000));
  return r;
}

std::optional<Refusal> RoutePolicies::check(const RequestView& req, std::string_view route,
                                            std::int64_t now_s, Identity& id, Edits& edits,
                                            std::vector<RateCheck>& rate) const {
  if (cors_)
    if (auto origin = req.header("origin"); origin && origin_allowed(*cors_, *origin))
      cors_headers(*cors_, *origin, edits.response_add);

  if (!protected_.empty()) edits.protect = &protected_;
  if (!transform_.empty()) edits.transform = &transform_; // after authentication's edits

  // Authentication: each entry must pass; an entry passes when one of its alternatives does.
  for (const auto& alternatives : auth_) {
    bool passed = false, forbidden = false;
    HeaderList challenges;
    std::string why;
    for (const auto& step : alternatives) {
      Identity got;
      std::vector<std::pair<const Authenticator*, Authenticator::Outcome>> outcomes;
      bool all_ok = true;
      for (const auto* a : step.all) {
        auto o = a->authenticate(req, now_s);
        if (o.status != Authenticator::Status::ok) {
          all_ok = false;
          if (o.status == Authenticator::Status::invalid && why.empty()) why = o.why;
          challenges.emplace_back("www-authenticate", a->challenge(o));
          break;
        }
        if (!got.authenticated) got.consumer = o.consumer;
        got.authenticated = true;
        if (!o.claims.is_null()) got.claims = o.claims;
        outcomes.emplace_back(a, std::move(o));
      }
      if (!all_ok) continue;
      got.scopes = scopes_of(got.claims);
      if (!has_all(got.scopes, step.scopes)) {
        forbidden = true;
        continue;
      }
      for (const auto& [a, o] : outcomes)
        a->apply(o, edits);
      if (got.authenticated && !id.authenticated) {
        id = std::move(got);
      } else if (got.authenticated && id.claims.is_null() && !got.claims.is_null()) {
        id.claims = std::move(got.claims); // e.g. an API key, then a JWT: keep the token's claims
        id.scopes = std::move(got.scopes);
      }
      passed = true;
      break;
    }
    if (passed) continue;
    Refusal r;
    if (forbidden) {
      r.status = 403;
      r.message = "the credentials lack a required scope";
    } else {
      r.status = 401;
      r.message = why.empty() ? "authentication required" : "authentication failed: " + why;
      r.headers = challenges;
    }
    append(r.headers, edits.response_add);
    return r;
  }

  // Access control: a known caller without rights gets 403; an anonymous one 401.
  for (const auto* a : access_) {
    std::string missing;
    if (!id.authenticated) {
      // An anonymous option let the caller through; a 401 still says how to authenticate
      // (RFC 9110 §15.5.2).
      Refusal r{401, "authentication required", {}};
      for (const auto& alternatives : auth_)
        for (const auto& step : alternatives)
          for (const auto* au : step.all) {
            std::pair<std::string, std::string> line{"www-authenticate",
                                                     au->challenge(Authenticator::Outcome{})};
            if (std::find(r.headers.begin(), r.headers.end(), line) == r.headers.end())
              r.headers.push_back(std::move(line));
          }
      append(r.headers, edits.response_add);
      return r;
    }
    if (!has_all(id.scopes, a->scopes)) missing = "a required scope";
    for (const auto& [claim, values] : a->claims) {
      auto it = id.claims.is_object() ? id.claims.find(claim) : id.claims.end();
      bool ok = false;
      if (id.claims.is_object() && it != id.claims.end()) {
        if (it->is_array()) {
          for (const auto& v : *it)
            ok = ok || (v.is_string() && std::find(values.begin(), values.end(),
                                                   v.get<std::string>()) != values.end());
        } else {
          ok = std::find(values.begin(), values.end(), claim_text(*it)) != values.end();
        }
      }
      if (!ok && missing.empty()) missing = "claim " + claim;
    }
    if (!a->consumers.empty() &&
        std::find(a->consumers.begin(), a->consumers.end(), id.consumer) == a->consumers.end())
      missing = "an allowed consumer";
    if (std::find(a->deny_consumers.begin(), a->deny_consumers.end(), id.consumer) !=
        a->deny_consumers.end())
      missing = "an allowed consumer";
    if (!missing.empty()) {
      Refusal r{403, "access denied: the caller lacks " + missing, edits.response_add};
      return r;
    }
  }

  // Rate limits: the keys to count (the session counts them; Redis needs I/O).
  for (const auto& l : limiters_) {
    RateCheck c;
    c.limiter = &l;
    // Values a caller chooses (a header, a claim) and addresses are tagged apart, so nobody can
    // name a bucket that belongs to another kind of key (X-Tenant: <someone's address>).
    const auto by_ip = [&] { return "ip:" + std::string(req.client_ip()); };
    switch (l.settings.key) {
    case RateLimit::Key::client_ip:
      c.key = by_ip();
      break;
    case RateLimit::Key::consumer: // anonymous (any_of's empty option): by address, as below
      c.key = id.consumer.empty() ? by_ip() : "c:" + id.consumer;
      break;
    case RateLimit::Key::route:
      c.key = route;
      break;
    case RateLimit::Key::global:
      break;
    case RateLimit::Key::header:
      // A missing header must not share one bucket with all others.
      if (auto v = req.header(l.settings.key_name))
        c.key = "h:" + std::string(*v);
      else
        c.key = by_ip();
      break;
    case RateLimit::Key::claim: {
      auto it = id.claims.is_object() ? id.claims.find(l.settings.key_name) : id.claims.end();
      c.key = id.claims.is_object() && it != id.claims.end() ? "j:" + claim_text(*it) : by_ip();
      break;
    }
    }
    rate.push_back(std::move(c));
  }

  return std::nullopt;
}

namespace {
std::string limiter_policy(const std::string& name, const RateLimit& rl) {
  const auto window_s = std::max<std::int64_t>(1, (rl.per.count() + 999) / 1000);
  return qstr(name) + ";q=" + std::to_string(rl.count) + ";w=" + std::to_string(window_s);
}
} // namespace

std::optional<Refusal> RoutePolicies::rate_result(const Limiter& l, const Take& t, Edits& edits) {
  auto append_fields = [&](HeaderList& out) {
    out.emplace_back("ratelimit-policy", l.policy_field);
    std::string v = l.field_prefix;
    v += std::to_string(t.remaining);
    v += ";t=";
    v += std::to_string((t.reset_ms + 999) / 1000);
    out.emplace_back("ratelimit", std::move(v));
  };
  if (t.allowed) {
    append_fields(edits.response_add);
    return std::nullopt;
  }
  Refusal r;
  r.status = 429;
  r.message = "rate limit " + l.name + " exceeded";
  r.headers.emplace_back("retry-after",
                         std::to_string(std::max<std::int64_t>(1, (t.retry_after_ms + 999) / 1000)));
  append_fields(r.headers);
  append(r.headers, edits.response_add);
  return r;
}

// ---- PolicySet

PolicySet::PolicySet() = default;
PolicySet::~PolicySet() = default;

Result<std::shared_ptr<const PolicySet>> PolicySet::build(const model::Config& cfg,
                                                          const Registry& reg) {
  auto set = std::shared_ptr<PolicySet>(new PolicySet());
  std::vector<const Authenticator*> by_index(cfg.policies.size(), nullptr);
  set->settings_.reserve(cfg.policies.size());
  for (std::size_t i = 0; i < cfg.policies.size(); ++i) {
    const auto& p = cfg.policies[i];
    const auto kind = kind_from_name(p.kind);
    if (!kind) return fail(errc::unsupported, "policy \"" + p.name + "\": unknown kind " + p.kind);
    auto s = parse(*kind, p.config);
    if (!s) return fail(errc::invalid_argument, "policy \"" + p.name + "\": " + s.error().message);
    set->settings_.push_back(std::move(*s));
    std::unique_ptr<Authenticator> a;
    if (auto* ak = std::get_if<ApiKey>(&set->settings_.back())) {
      a = std::make_unique<ApiKeyAuth>(*ak);
    } else if (auto* b = std::get_if<Basic>(&set->settings_.back())) {
      a = std::make_unique<BasicAuth>(*b);
    } else if (auto* j = std::get_if<Jwt>(&set->settings_.back())) {
      std::vector<jwt::Key> keys;
      for (const auto& pem : j->pems) {
        auto k = jwt::Key::from_pem(pem);
        if (!k)
          return fail(errc::invalid_argument, "policy \"" + p.name + "\": " + k.error().message);
        keys.push_back(std::move(*k));
      }
      if (!j->jwks.empty()) {
        auto ks = jwt::parse_jwks(j->jwks);
        if (!ks)
          return fail(errc::invalid_argument, "policy \"" + p.name + "\": " + ks.error().message);
        for (auto& k : ks->keys)
          keys.push_back(std::move(k));
      }
      // HMAC secrets stay out of tables: read them now, at every load.
      std::string secret;
      if (!j->secret_env.empty() || !j->secret_file.empty()) {
        auto read = read_hmac_secret(j->secret_env, j->secret_file);
        if (!read)
          return std::unexpected(
              Error(read.error().code, "policy \"" + p.name + "\": " + read.error().message));
        secret = std::move(*read);
      }
      if (!secret.empty()) {
        auto k = jwt::Key::from_secret(std::move(secret));
        if (!k)
          return fail(errc::invalid_argument, "policy \"" + p.name + "\": " + k.error().message);
        keys.push_back(std::move(*k));
      }
      std::shared_ptr<KeySource> source;
      const std::string& url = j->jwks_url.empty() ? j->openid_connect_url : j->jwks_url;
      if (!url.empty()) {
        if (!reg.key_source)
          return fail(errc::unsupported, "policy \"" + p.name + "\": key URLs need gwd");
        source = reg.key_source(url, j->jwks_url.empty(), j->jwks_refresh);
      }
      a = std::make_unique<JwtAuth>(*j, std::move(keys), std::move(source));
    }
    if (a) {
      by_index[i] = a.get();
      set->authenticators_.push_back(std::move(a));
    }
  }
  auto index_of = [&](const std::string& name) -> std::size_t {
    for (std::size_t i = 0; i < cfg.policies.size(); ++i)
      if (cfg.policies[i].name == name) return i;
    return cfg.policies.size();
  };

  set->routes_.resize(cfg.routes.size());
  for (std::size_t r = 0; r < cfg.routes.size(); ++r) {
    auto& rp = set->routes_[r];
    for (auto idx : cfg.routes[r].policies) {
      const auto& p = cfg.policies[idx];
      const Settings& s = set->settings_[idx];
      if (by_index[idx]) {
        rp.auth_.push_back({RoutePolicies::Step{{by_index[idx]}, {}}});
      } else if (const auto* any = std::get_if<AnyOf>(&s)) {
        std::vector<RoutePolicies::Step> alts;
        for (const auto& opt : any->options) {
          RoutePolicies::Step step;
          step.scopes = opt.scopes;
          for (const auto& n : opt.policies) {
            const auto j = index_of(n);
            if (j == cfg.policies.size() || !by_index[j])
              return fail(errc::invalid_argument, "policy \"" + p.name + "\": option names " + n +
                                                      ", not an authentication policy");
            step.all.push_back(by_index[j]);
          }
          alts.push_back(std::move(step));
        }
        rp.auth_.push_back(std::move(alts));
      } else if (const auto* ac = std::get_if<Access>(&s)) {
        rp.access_.push_back(ac);
      } else if (const auto* c = std::get_if<Cors>(&s)) {
        rp.cors_ = c;
      } else if (const auto* h = std::get_if<Headers>(&s)) {
        add_transform(rp.transform_, *h); // a route may have several (e.g. [[attach]])
      } else if (const auto* rl = std::get_if<RateLimit>(&s)) {
        Limiter l;
        l.name = p.name;
        l.settings = *rl;
        l.policy_field = limiter_policy(p.name, *rl);
        l.field_prefix = qstr(p.name) + ";r=";
        if (rl->redis) {
          l.redis_prefix = "gw:rl:" + p.name + ":";
          l.redis_server = rl->redis_host + ":" + std::to_string(rl->redis_port) + "/" +
                           std::to_string(rl->redis_timeout.count());
        } else {
          if (!reg.buckets)
            return fail(errc::unsupported, "policy \"" + p.name + "\": rate limits need gwd");
          // Same name and settings: the same buckets, across reloads.
          l.local = reg.buckets->get(p.name + "\n" + p.config, rl->interval_us(),
                                     static_cast<std::int64_t>(rl->burst));
        }
        rp.limiters_.push_back(std::move(l));
      }
    }
    // What the route's authenticators set and read: headers only the gateway may send, and
    // query parameters that carry credentials (kept out of access logs).
    for (const auto& alternatives : rp.auth_)
      for (const auto& step : alternatives)
        for (const auto* a : step.all) {
          a->protect(rp.protected_);
          for (const auto& c : a->credentials())
            if (c.in == Credential::In::query) rp.secret_params_.push_back(c.name);
        }
  }
  return std::shared_ptr<const PolicySet>(std::move(set));
}

} // namespace gw::policy
