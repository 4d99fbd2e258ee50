// api_key: a key in a header, a query parameter or a cookie, checked against SHA-256 digests.
#include <algorithm>
#include <charconv>
#include <set>

#include <openssl/crypto.h>

#include "gw/core/file.hpp"
#include "gw/core/sha256.hpp"
#include "gw/policy/kinds.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/authenticator.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "api_key";

constexpr std::string_view kSchema = R"json({
  "header": {
    "description": "Request header carrying the key (one name or a list tried in turn).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "query": {
    "description": "Query parameter carrying the key (one name or a list); kept out of access logs.",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "cookie": {
    "description": "Cookie carrying the key (one name or a list).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "keys": {
    "description": "Inline keys as { consumer, sha256 } (SHA-256 of the key, hex); prefer keys_file.",
    "type": "array",
    "items": {
      "type": "object",
      "required": ["consumer", "sha256"],
      "properties": {
        "consumer": {"description": "Consumer name the key identifies.", "type": "string"},
        "sha256": {
          "description": "Hex SHA-256 of the key (`gwctl key new` prints it).",
          "type": "string",
          "pattern": "^(sha256:)?[0-9a-fA-F]{64}$"
        }
      },
      "additionalProperties": false
    }
  },
  "keys_file": {
    "description": "File of `CONSUMER sha256:HEX` lines, relative to the spec; embedded in the table at compile time.",
    "type": "string"
  },
  "strip": {
    "description": "Remove the key before forwarding (default true).",
    "type": "boolean"
  },
  "consumer_header": {
    "description": "Header that tells the upstream who the consumer is (default x-consumer; \"\" for none).",
    "type": "string"
  },
  "realm": {"description": "Realm in WWW-Authenticate (default gw).", "type": "string"}
})json";

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

ApiKey read(Fields& f, json* canonical) {
  ApiKey a;
  a.from = credentials(f, true);
  if (a.from.empty() && f.ok())
    f.error("", "says nowhere to find the key: give header, query or cookie");
  if (auto v = f.boolean("strip")) a.strip = *v;
  a.consumer_header = header_option(f, "consumer_header", a.consumer_header);
  if (auto v = f.str("realm")) a.realm = *v;
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

class ApiKeyFilter final : public Authenticator {
public:
  explicit ApiKeyFilter(ApiKey s) : s_(std::move(s)) {}

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
  void apply(const Outcome& o, Edits& e) const override {
    if (s_.strip && o.from) strip_credential(*o.from, e);
    if (!s_.consumer_header.empty()) e.set_once(s_.consumer_header, o.consumer);
  }

protected:
  std::span<const Credential> credentials() const noexcept override { return s_.from; }
  void protect(std::vector<std::string>& names) const override {
    if (!s_.consumer_header.empty()) names.push_back(s_.consumer_header);
  }

private:
  ApiKey s_;
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<ApiKey>(kName, &read, settings, ctx, diags);
}

} // namespace

template <>
Result<ApiKey> parse<ApiKey>(std::string_view canonical, std::string_view policy) {
  return parse_with<ApiKey>(kName, &read, canonical, policy);
}

constexpr KindInfo kApiKeyKind{
    .name = kName,
    .phase = Phase::authenticate,
    .authenticates = true,
    .composite = false,
    .schema = kSchema,
    .compile = &compile,
    .build = &build_from<ApiKey, ApiKeyFilter>,
    .needs_identity = nullptr,
    .references = nullptr,
};

} // namespace gw::policy
