// Policy settings: what each policy kind takes in a spec (`[policies.NAME]` with a `kind`), checked
// with file:line:col diagnostics by `gwctl validate` and stored in the table as canonical JSON.
// Files a policy names (API key hashes, htpasswd, public keys) are read when the spec is compiled
// and embedded, so a table is self-contained and `gwctl diff` sees key changes; secrets (HMAC keys)
// are never embedded: gwd reads them from the environment or a file when it loads the table.
// Each kind's reader lives in its own file (src/policy/kinds/) and is reached through its row in
// the table of kinds (kinds.hpp); the typed settings of the built-in kinds are declared here for
// tests and tools. Read next: kinds.hpp, route_chain.hpp (how a route's policies run).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/diagnostics.hpp"
#include "gw/core/error.hpp"
#include "gw/core/sha256.hpp"
#include "gw/core/units.hpp"
#include "gw/policy/filter.hpp"

namespace gw::policy {

/// The order policies run in on a route, whatever order they are listed in: CORS preflights are
/// answered first (they carry no credentials), then the caller is authenticated, its rights
/// checked, its rate counted, and only then is the request transformed.
/// Plugins (lua) run after the built-in checks and before the headers policies.
enum class Phase : std::uint8_t { cors, authenticate, access, rate_limit, plugin, transform };

/// Where a credential is read from. Header names are lowercase.
struct Credential {
  enum class In : std::uint8_t { header, query, cookie };
  In in = In::header;
  std::string name;
  bool operator==(const Credential&) const = default;
};

struct ApiKey {
  std::vector<Credential> from;
  std::vector<std::pair<Sha256, std::string>> keys; // SHA-256 of the key -> consumer, sorted
  bool strip = true;                                // remove the key before forwarding
  std::string consumer_header = "x-consumer";       // "" = none
  std::string realm = "gw";
};

struct Basic {
  std::vector<std::pair<std::string, std::string>> users; // user -> crypt(3) hash, sorted
  bool strip = true;
  std::string consumer_header = "x-consumer";
  std::string realm = "gw";
};

struct Jwt {
  std::vector<Credential> from;   // default: Authorization: Bearer
  std::vector<std::string> pems;  // public keys (PEM), embedded
  std::string jwks;               // a JWKS document, embedded ("" = none)
  std::string jwks_url;           // fetched by gwd, refreshed every `jwks_refresh`
  std::string openid_connect_url; // discovery document; gwd reads only its jwks_uri
  units::Millis jwks_refresh{std::chrono::minutes(5)};
  std::string secret_env, secret_file; // HMAC secret, read by gwd at load
  std::vector<std::string> algorithms; // allowed "alg" values
  std::vector<std::string> issuers, audiences;
  std::int64_t leeway_s = 30;
  bool require_exp = true;
  std::vector<std::pair<std::string, std::string>> forward_claims; // claim -> header
  std::string consumer_claim = "sub";
  std::string consumer_header = "x-consumer";
  bool strip = false; // backends often want the token
  std::string realm = "gw";
};

struct Access {
  std::vector<std::string> scopes;                                      // all required
  std::vector<std::pair<std::string, std::vector<std::string>>> claims; // claim in values
  std::vector<std::string> consumers;                                   // allow list ("" = any)
  std::vector<std::string> deny_consumers;
};

struct AnyOf {
  struct Option {
    std::vector<std::string> policies; // authentication policies, all required; none = anonymous
    std::vector<std::string> scopes;
  };
  std::vector<Option> options;
};

struct RateLimit {
  enum class Key : std::uint8_t { client_ip, consumer, route, global, header, claim };
  std::uint64_t count = 0; // `count` requests ...
  units::Millis per{1000}; // ... per this window
  std::uint64_t burst = 0; // bucket size (default: count)
  Key key = Key::client_ip;
  std::string key_name; // header or claim name
  bool redis = false;
  std::string redis_host;
  std::uint16_t redis_port = 6379;
  units::Millis redis_timeout{100};
  bool fail_open = true; // when Redis cannot answer
  /// Microseconds between tokens.
  std::int64_t interval_us() const noexcept {
    return per.count() * 1000 / static_cast<std::int64_t>(count);
  }
};

struct Headers {
  HeaderOps request, response;
  std::vector<std::pair<std::string, std::string>> query_set;
  std::vector<std::string> query_remove;
};

struct Cors {
  std::vector<std::string> origins; // exact origins ("https://app.example.com"), or "*"
  std::vector<std::string> methods, headers, expose; // headers lowercase
  bool credentials = false;
  units::Millis max_age{std::chrono::minutes(10)};
};

/// Where a policy was written, for diagnostics, and where its files are.
struct Context {
  std::string_view policy;                                // its name
  SourceLoc loc;                                          // the [policies.NAME] table
  const std::map<std::string, SourceLoc>* locs = nullptr; // "/key" -> where it was written
  std::filesystem::path base_dir;                         // relative file names start here
};

/// Typed settings from canonical JSON (a table's), read as the kind's filter reads them: the
/// same reader as its row's `compile`, so what compile accepted parses. Each kind's file defines
/// its own; errors name the policy as errc::invalid_argument.
template <class T>
Result<T> parse(std::string_view canonical, std::string_view policy = {});
template <>
Result<ApiKey> parse<ApiKey>(std::string_view, std::string_view);
template <>
Result<Basic> parse<Basic>(std::string_view, std::string_view);
template <>
Result<Jwt> parse<Jwt>(std::string_view, std::string_view);
template <>
Result<Access> parse<Access>(std::string_view, std::string_view);
template <>
Result<AnyOf> parse<AnyOf>(std::string_view, std::string_view);
template <>
Result<RateLimit> parse<RateLimit>(std::string_view, std::string_view);
template <>
Result<Headers> parse<Headers>(std::string_view, std::string_view);
template <>
Result<Cors> parse<Cors>(std::string_view, std::string_view);

/// The HMAC secret of a jwt policy (or of `gwctl jwt sign`), from the environment variable
/// `env_name` or else from `file` (at most 64 KiB, trailing CR and LF dropped so that an editor's
/// final newline is not part of it). gwd and gwctl both read it here, so they agree byte for byte.
/// Errors: errc::not_found (variable unset or empty), the file's errors, errc::invalid_argument
/// (neither given, or an empty secret).
Result<std::string> read_hmac_secret(const std::string& env_name, const std::string& file);

/// The line a keys file holds for a key: "CONSUMER sha256:HEX".
std::string key_file_line(std::string_view consumer, std::string_view key);

} // namespace gw::policy
