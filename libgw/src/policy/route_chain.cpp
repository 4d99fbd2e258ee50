#include "gw/policy/route_chain.hpp"

#include <algorithm>

#include "gw/core/text.hpp"
#include "gw/policy/kinds.hpp"

namespace gw::policy {

void RouteChain::begin(FilterContext& ctx) const noexcept {
  ctx.facts = &facts_;
  if (!facts_.protect.empty()) ctx.edits.protect = &facts_.protect;
  // Applied after what the filters edit, so a headers policy may replace an identity header.
  if (!facts_.transform.empty()) ctx.edits.transform = &facts_.transform;
}

Result<std::shared_ptr<const PolicySet>>
PolicySet::build(std::span<const PolicyDef> policies,
                 std::span<const std::vector<std::uint32_t>> route_policies, const Registry& reg) {
  auto set = std::shared_ptr<PolicySet>(new PolicySet());
  std::vector<const KindInfo*> kind_of(policies.size(), nullptr);
  for (std::size_t i = 0; i < policies.size(); ++i) {
    kind_of[i] = find_kind(policies[i].kind);
    if (!kind_of[i])
      return fail(errc::unsupported, "policy " + text::quote(policies[i].name) + ": unknown kind " +
                                         std::string(policies[i].kind));
  }
  set->filters_.resize(policies.size());
  const auto find = [&](std::string_view name) -> const Filter* {
    for (std::size_t i = 0; i < policies.size(); ++i)
      if (policies[i].name == name) return set->filters_[i].get();
    return nullptr;
  };
  // Composite kinds refer to other policies' filters, so those are built first.
  for (const bool composite : {false, true}) {
    for (std::size_t i = 0; i < policies.size(); ++i) {
      if (kind_of[i]->composite != composite) continue;
      BuildContext ctx;
      ctx.policy = policies[i].name;
      ctx.settings = policies[i].settings;
      ctx.registry = &reg;
      ctx.find = find;
      auto f = kind_of[i]->build(ctx);
      if (!f) return std::unexpected(std::move(f.error()));
      set->filters_[i] = std::move(*f);
    }
  }

  set->routes_.resize(route_policies.size());
  for (std::size_t r = 0; r < route_policies.size(); ++r) {
    RouteChain& chain = set->routes_[r];
    for (const auto idx : route_policies[r]) {
      if (idx >= policies.size())
        return fail(errc::invalid_argument, "route " + std::to_string(r) + " names policy " +
                                                std::to_string(idx) + " of " +
                                                std::to_string(policies.size()));
      const Filter* f = set->filters_[idx].get();
      chain.filters_.push_back(f);
      f->contribute(chain.facts_);
      chain.body_ = std::max(chain.body_, f->response_body());
    }
  }
  return std::shared_ptr<const PolicySet>(std::move(set));
}

} // namespace gw::policy
