// A route's policies, ready to run: built once per table generation from the canonical settings,
// shared read-only by the workers. The session calls them in phase order (see settings.hpp):
//   preflight()   CORS preflights, answered before anything else
//   check()       authentication and access control; fills the caller's Identity and the edits
//   rate checks   the keys to count (local buckets here, Redis by the session, which owns I/O)
//   edits         applied while the upstream request and the response head are written
// Nothing here does I/O or takes a lock, except the local buckets' per-shard lock and the Basic
// credential cache (crypt(3) is deliberately slow, so a verified credential is remembered).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/error.hpp"
#include "gw/policy/buckets.hpp"
#include "gw/policy/jwt.hpp"
#include "gw/policy/settings.hpp"

namespace gw::model {
struct Config;
}

namespace gw::policy {

/// A reply the gateway gives instead of forwarding: 401, 403, 429, or a preflight's 204.
struct Refusal {
  unsigned status = 0;
  std::string message;
  HeaderList headers;
};

/// Public keys fetched in the background (jwks_url, OpenID Connect discovery), shared across
/// generations. Implemented by the daemon; `keys()` is safe from any worker.
class KeySource {
public:
  virtual ~KeySource() = default;
  virtual std::shared_ptr<const std::vector<jwt::Key>> keys() const = 0;
  /// A token named a kid the current keys lack: refetch soon (rate-limited by the source).
  virtual void refresh_soon() const = 0;
};

/// Where gwd's long-lived policy state lives: buckets and key sources outlive generations.
struct Registry {
  BucketRegistry* buckets = nullptr;
  /// Returns the key source for a URL (jwks or discovery), creating it on first use.
  std::function<std::shared_ptr<KeySource>(const std::string& url, bool discovery,
                                           units::Millis refresh)>
      key_source;
};

/// One rate-limit policy on a route.
struct Limiter {
  std::string name; // the policy's, for RateLimit headers
  RateLimit settings;
  std::shared_ptr<Buckets> local; // null for Redis
  std::string redis_prefix;       // "gw:rl:NAME:"
  std::string redis_server;       // "HOST:PORT/TIMEOUT_MS": a worker's connection for it
  std::string policy_field;       // RateLimit-Policy's value, built once
  std::string field_prefix;       // RateLimit's value up to the remaining count: "\"NAME\";r="
};

/// A rate-limit key to count for this request.
struct RateCheck {
  const Limiter* limiter = nullptr;
  std::string key;
};

class Authenticator; // api_key, basic or jwt

class RoutePolicies {
public:
  bool empty() const noexcept {
    return auth_.empty() && !cors_ && limiters_.empty() && transform_.empty() && access_.empty();
  }
  bool has_cors() const noexcept { return cors_ != nullptr; }

  /// A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) for this route:
  /// the 204 that allows it, or a 403.
  Refusal preflight(const RequestView& req) const;

  /// Authentication and access control; on success fills `id`, `edits` and the rate-limit keys
  /// to count. CORS response headers are added for allowed origins, refusals included.
  std::optional<Refusal> check(const RequestView& req, std::string_view route, std::int64_t now_s,
                               Identity& id, Edits& edits, std::vector<RateCheck>& rate) const;

  /// The 429 for a refused take, or nothing; adds the RateLimit headers to `edits` either way.
  static std::optional<Refusal> rate_result(const Limiter& l, const Take& t, Edits& edits);

  const std::vector<Limiter>& limiters() const noexcept { return limiters_; }
  /// Query parameters that carry credentials on this route (kept out of access logs).
  const std::vector<std::string>& secret_params() const noexcept { return secret_params_; }

private:
  friend class PolicySet;
  struct Step {
    std::vector<const Authenticator*> all; // every one must pass (AND)
    std::vector<std::string> scopes;
  };
  std::vector<std::vector<Step>> auth_; // each entry: alternatives (OR) of steps
  std::vector<const Access*> access_;
  const Cors* cors_ = nullptr;
  std::vector<Limiter> limiters_;
  Transform transform_;                // every headers policy, composed in order
  std::vector<std::string> protected_; // consumer and claim headers the authenticators set
  std::vector<std::string> secret_params_;
};

/// Every policy of a table generation, and each route's chain.
class PolicySet {
public:
  static Result<std::shared_ptr<const PolicySet>> build(const model::Config& cfg,
                                                        const Registry& reg);
  const RoutePolicies& route(std::size_t index) const noexcept { return routes_[index]; }
  ~PolicySet();
  PolicySet();

private:
  std::vector<std::unique_ptr<Authenticator>> authenticators_;
  std::vector<Settings> settings_; // by policy index
  std::vector<RoutePolicies> routes_;
};

/// Scopes granted by JWT claims: "scope" (space-separated) or "scp" (array or string).
std::vector<std::string> scopes_of(const nlohmann::json& claims);

} // namespace gw::policy
