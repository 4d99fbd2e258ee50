// The one precedence rule, shared by every source format: most specific wins.
//   exact path > template (more literal characters, then more segments, rest-less first)
//   > prefix (longer first) > regex (higher `priority` first);
//   then routes with more header/query conditions; then declaration order.
// Host specificity (exact host > longest wildcard > any) is applied before this, by the router.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "gw/model/config.hpp"

namespace gw::model {

/// Sort key of a route within one host group; smaller sorts first.
struct PrecedenceKey {
  std::uint8_t kind = 0;
  std::int64_t a = 0, b = 0, c = 0; // kind-specific specificity, negated so smaller is stronger
  std::int64_t conditions = 0;      // negated count of header and query conditions
  std::uint32_t decl = 0;

  auto tie() const { return std::tie(kind, a, b, c, conditions, decl); }
  bool operator<(const PrecedenceKey& o) const { return tie() < o.tie(); }
  /// Equal in everything but declaration order: a tie the spec author should know about.
  bool same_rank(const PrecedenceKey& o) const {
    return std::tie(kind, a, b, c, conditions) == std::tie(o.kind, o.a, o.b, o.c, o.conditions);
  }
};

class PathTemplate;

/// `parsed` may pass the route's already-parsed template (saves parsing it again).
PrecedenceKey precedence_key(const Route& r, const PathTemplate* parsed = nullptr);

/// 0 = has an exact host, 1 = only wildcard hosts, 2 = any host.
int host_tier(const Route& r);

/// Sorts routes into precedence order (host tier first, then PrecedenceKey). `keys`, when
/// given, holds each route's precomputed key.
void sort_by_precedence(std::vector<Route>& routes, const std::vector<PrecedenceKey>& keys = {});

/// One line for humans: "template, 7 literal chars, 2 segments".
std::string describe_specificity(const Route& r);

} // namespace gw::model
