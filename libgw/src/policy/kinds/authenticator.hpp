// Private: what the authentication kinds (api_key, basic, jwt) share. Each is an Authenticator:
// a filter whose on_request authenticates the caller (401 with its challenge otherwise), and
// whose parts any_of calls one by one to try its options without answering for them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/text.hpp"
#include "gw/policy/filter.hpp"
#include "gw/policy/settings.hpp"
#include "gw/uri/normalize.hpp"

namespace gw::policy {

/// An authentication filter. Immutable; any thread.
class Authenticator : public Filter {
public:
  enum class Status : std::uint8_t { ok, missing, invalid };
  struct Outcome {
    Status status = Status::missing;
    std::string consumer;
    nlohmann::json claims;
    std::string why; // for invalid credentials: short, no secrets
    const Credential* from = nullptr;
  };

  virtual Outcome authenticate(const RequestView& req, std::int64_t now_s) const = 0;
  /// The WWW-Authenticate value for a failure (Outcome{}: no credential at all).
  virtual std::string challenge(const Outcome& o) const = 0;
  /// What a success changes in the forwarded request.
  virtual void apply(const Outcome& o, Edits& e) const = 0;

  /// Headers this authenticator sets, which only the gateway may send, and the query
  /// parameters that carry its credential; its challenge for an anonymous caller.
  void contribute(RouteFacts& facts) const override;
  /// 401 with the challenge, or the caller's identity and the edits of a success.
  Verdict on_request(FilterContext& ctx) const override;

  /// The 401 for failed outcomes: `why` is the first invalid credential's reason ("" = none).
  static LocalReply unauthorized(const std::string& why, HeaderList challenges);
  /// Adds an authenticated caller to `id` as a route's authentication policies agree on it:
  /// the first names the consumer; a later one that carries claims (a JWT after an API key)
  /// adds them.
  static void merge(Identity& id, Identity&& got);

protected:
  /// Where it reads its credential (none: Basic reads Authorization).
  virtual std::span<const Credential> credentials() const noexcept { return {}; }
  /// Adds the headers it sets for the caller (consumer, forwarded claims).
  virtual void protect(std::vector<std::string>& names) const = 0;
};

// ---- helpers for the authentication kinds

inline void add_unique(std::vector<std::string>& v, std::string s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

/// The first credential present, and where it came from.
inline std::optional<std::pair<std::string, const Credential*>>
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

/// Drops the credential from the forwarded request.
inline void strip_credential(const Credential& c, Edits& e) {
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

/// A quoted-string (RFC 9110 §5.6.4) for challenge parameters; control characters dropped.
inline std::string qstr(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + '"';
}

/// A claim's value as header or comparison text: strings as they are, others as JSON.
inline std::string claim_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

inline bool header_safe(std::string_view v) {
  return std::none_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

inline bool has_all(const std::vector<std::string>& granted,
                    const std::vector<std::string>& wanted) {
  return std::all_of(wanted.begin(), wanted.end(), [&](const std::string& s) {
    return std::find(granted.begin(), granted.end(), s) != granted.end();
  });
}

} // namespace gw::policy
