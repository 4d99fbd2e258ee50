// The table of policy kinds: one line per kind. The order is the one `gwctl validate` lists them
// in (hints, the schema's enum).
#include "gw/policy/kinds.hpp"

#include <algorithm>

#include "kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr const KindInfo* kKinds[] = {
    &kApiKeyKind,    // kinds/api_key.cpp
    &kBasicKind,     // kinds/basic.cpp
    &kJwtKind,       // kinds/jwt_auth.cpp
    &kAccessKind,    // kinds/access.cpp
    &kAnyOfKind,     // kinds/any_of.cpp
    &kRateLimitKind, // kinds/rate_limit.cpp
    &kHeadersKind,   // kinds/headers.cpp
    &kCorsKind,      // kinds/cors.cpp
    &kExtAuthKind,   // kinds/ext_auth.cpp
    &kLuaKind,       // kinds/lua.cpp
};

} // namespace

std::span<const KindInfo* const> kinds() noexcept {
  return kKinds;
}

const KindInfo* find_kind(std::string_view name) noexcept {
  const auto it = std::find_if(std::begin(kKinds), std::end(kKinds),
                               [&](const KindInfo* k) { return k->name == name; });
  return it == std::end(kKinds) ? nullptr : *it;
}

} // namespace gw::policy
