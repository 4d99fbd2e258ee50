// basic: HTTP Basic authentication (RFC 7617) against crypt(3) hashes from an htpasswd file.
#include <algorithm>
#include <crypt.h>
#include <mutex>
#include <set>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gw/core/file.hpp"
#include "gw/core/sha256.hpp"
#include "gw/policy/kinds.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/authenticator.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "basic";

constexpr std::string_view kSchema = R"json({
  "users": {
    "description": "Inline `user:crypt-hash` entries (bcrypt, SHA-crypt or yescrypt).",
    "type": "array", "items": {"type": "string"}
  },
  "htpasswd_file": {
    "description": "htpasswd file (bcrypt $2y$/$2b$, SHA-crypt $5$/$6$, yescrypt $y$), relative to the spec; embedded at compile time.",
    "type": "string"
  },
  "strip": {
    "description": "Remove the Authorization header before forwarding (default true).",
    "type": "boolean"
  },
  "consumer_header": {
    "description": "Header that tells the upstream who the consumer is (default x-consumer; \"\" for none).",
    "type": "string"
  },
  "realm": {"description": "Realm in WWW-Authenticate (default gw).", "type": "string"}
})json";

bool supported_crypt_hash(std::string_view h) {
  // bcrypt, SHA-crypt and yescrypt through libxcrypt; not MD5-apr1 or {SHA} (too weak or
  // unsupported).
  return h.starts_with("$2y$") || h.starts_with("$2b$") || h.starts_with("$2a$") ||
         h.starts_with("$5$") || h.starts_with("$6$") || h.starts_with("$y$");
}

Basic read(Fields& f, json* canonical) {
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

/// Immutable but for the cache of verified credentials, which a mutex guards; any thread.
class BasicFilter final : public Authenticator {
public:
  explicit BasicFilter(Basic s) : s_(std::move(s)) {}

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
  void apply(const Outcome& o, Edits& e) const override {
    if (s_.strip) e.drop.push_back("authorization");
    if (!s_.consumer_header.empty()) e.set_once(s_.consumer_header, o.consumer);
  }

protected:
  void protect(std::vector<std::string>& names) const override {
    if (!s_.consumer_header.empty()) names.push_back(s_.consumer_header);
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

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<Basic>(kName, &read, settings, ctx, diags);
}

} // namespace

template <>
Result<Basic> parse<Basic>(std::string_view canonical, std::string_view policy) {
  return parse_with<Basic>(kName, &read, canonical, policy);
}

constexpr KindInfo kBasicKind{
    .name = kName,
    .phase = Phase::authenticate,
    .authenticates = true,
    .composite = false,
    .schema = kSchema,
    .compile = &compile,
    .build = &build_from<Basic, BasicFilter>,
    .needs_identity = nullptr,
    .references = nullptr,
};

} // namespace gw::policy
