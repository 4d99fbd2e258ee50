// Static conflict analysis of a route table, run by `gwctl validate` and `compile`:
//   route.duplicate (error)  two routes accept exactly the same requests;
//   route.shadowed  (warning) a route can never be chosen: others take every request it accepts;
//   route.ambiguous (warning) two different routes of equal precedence both accept some request,
//                            so declaration order alone decides.
// Each finding names the other route and an example request, checked against the real matcher.
#pragma once

#include "gw/core/diagnostics.hpp"
#include "gw/router/route_table.hpp"

namespace gw::router {

void analyze(const RouteTable& table, Diagnostics& diags, std::size_t max_per_kind = 100);

} // namespace gw::router
