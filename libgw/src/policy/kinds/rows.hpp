// Private: each kind's row, defined in the kind's own file and listed in kinds.cpp.
#pragma once

#include "gw/policy/kinds.hpp"

namespace gw::policy {

extern const KindInfo kApiKeyKind;    // api_key.cpp
extern const KindInfo kBasicKind;     // basic.cpp
extern const KindInfo kJwtKind;       // jwt_auth.cpp
extern const KindInfo kAccessKind;    // access.cpp
extern const KindInfo kAnyOfKind;     // any_of.cpp
extern const KindInfo kRateLimitKind; // rate_limit.cpp
extern const KindInfo kHeadersKind;   // headers.cpp
extern const KindInfo kCorsKind;      // cors.cpp
extern const KindInfo kExtAuthKind;   // ext_auth.cpp
extern const KindInfo kLuaKind;       // lua.cpp

} // namespace gw::policy
