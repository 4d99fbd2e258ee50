// JWT verification keys fetched over HTTP(S): a JWKS URL, or an OpenID Connect discovery document
// that names one. Each URL gets one fetcher for the whole process (shared by every table
// generation that uses it): it fetches once before the table is served (up to 5 s), then every
// `refresh`, and sooner when a token names a key it lacks (at most every 10 s), keeping the last
// good keys when a fetch fails. Fetches run on the fetcher's own thread, never on a worker.
#pragma once

#include <memory>
#include <string>

#include "gw/core/units.hpp"
#include "gw/policy/chain.hpp"

namespace gw::runtime {

std::shared_ptr<policy::KeySource> key_source(const std::string& url, bool discovery,
                                              units::Millis refresh);

} // namespace gw::runtime
