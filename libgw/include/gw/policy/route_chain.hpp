// A route's policies, ready to run: each policy of a table generation built once into a filter by
// its kind's factory (kinds.hpp), and per route the filters in phase order with what they are
// known to do (RouteFacts). Immutable once built; shared read-only by the workers, which call the
// filters' hooks (filter.hpp). Nothing here knows the model: the caller hands over the policies'
// canonical settings and each route's list of policy indices, already in phase order.
// Read next: filter.hpp (the hooks), kinds.hpp (the factories), registry.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "gw/core/error.hpp"
#include "gw/policy/filter.hpp"
#include "gw/policy/registry.hpp"

namespace gw::policy {

/// One policy as a table holds it.
struct PolicyDef {
  std::string_view name, kind, settings; // settings: canonical JSON from the kind's reader
};

/// One route's filters in the order the proxy calls on_request. Immutable; any thread.
class RouteChain {
public:
  std::span<const Filter* const> filters() const noexcept { return filters_; }
  const RouteFacts& facts() const noexcept { return facts_; }
  /// The strictest body mode any of its filters asks for.
  BodyMode response_body() const noexcept { return body_; }
  bool empty() const noexcept { return filters_.empty(); }
  /// Points a request's context at this route: `ctx.facts`, and the edits' fixed parts
  /// (`protect`, `transform`) when the route has any. Call after FilterContext::reset().
  void begin(FilterContext& ctx) const noexcept;

private:
  friend class PolicySet;
  std::vector<const Filter*> filters_; // owned by the PolicySet
  RouteFacts facts_;
  BodyMode body_ = BodyMode::none;
};

/// Every policy of a table generation as a filter, and each route's chain. Immutable; any thread.
class PolicySet {
public:
  /// Builds every policy's filter (composite kinds last, so that they find the others), then
  /// each route's chain from `route_policies` (indices into `policies`, in phase order).
  /// Errors: a policy of an unknown kind (errc::unsupported), or its factory's error.
  static Result<std::shared_ptr<const PolicySet>>
  build(std::span<const PolicyDef> policies,
        std::span<const std::vector<std::uint32_t>> route_policies, const Registry& reg);

  /// Precondition: `index` < the number of routes given to build().
  const RouteChain& route(std::size_t index) const noexcept { return routes_[index]; }
  std::size_t routes() const noexcept { return routes_.size(); }

private:
  PolicySet() = default;
  std::vector<std::shared_ptr<const Filter>> filters_; // by policy index
  std::vector<RouteChain> routes_;
};

} // namespace gw::policy
