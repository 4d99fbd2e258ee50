// JWT verification keys fetched over HTTP(S): a JWKS URL, or an OpenID Connect discovery document
// that names one. Each URL gets one fetcher for the whole process (shared by every table
// generation that uses it): it fetches once before the table is served (each document within
// 5 s), then every `refresh`, and sooner when a token names a key it lacks (at most every 10 s),
// keeping the last good keys when a fetch fails. Symmetric ("oct") keys in a fetched set are
// ignored: a JWKS served over HTTP is public. Fetches run on the fetcher's own thread, never on a
// worker. Read next: policy/registry.hpp (KeySource, Registry), runtime/snapshot.hpp.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "gw/core/units.hpp"
#include "gw/policy/registry.hpp"

namespace gw::runtime {

/// The process's key source for `url` (a discovery document when `discovery`) and `refresh`,
/// created and started on first use. Returns without waiting for the first fetch: call
/// wait_first_fetch() before serving a table that uses it. Any thread.
std::shared_ptr<policy::KeySource> key_source(const std::string& url, bool discovery,
                                              units::Millis refresh);

/// Waits until each source from key_source() has finished its first fetch, with keys or not
/// (sources fetched before return at once). The waits overlap: the whole call ends at most 6 s
/// after the last source was started (11 s for discovery, which fetches two documents). Other
/// KeySource types are skipped. Any thread.
void wait_first_fetch(std::span<const std::shared_ptr<policy::KeySource>> sources);

} // namespace gw::runtime
