// What policy filters share beyond one table generation: rate-limit buckets, public keys fetched
// in the background, and the clock the local buckets read. gwd owns one Registry for the process
// (runtime::policy_registry); tests build their own.
// Read next: route_chain.hpp (how a generation's filters are built from it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gw/core/units.hpp"
#include "gw/policy/buckets.hpp"
#include "gw/policy/jwt.hpp"

namespace gw::policy {

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
  /// Monotonic nanoseconds for local rate-limit buckets; null: std::chrono::steady_clock.
  std::int64_t (*clock_ns)() = nullptr;
};

} // namespace gw::policy
