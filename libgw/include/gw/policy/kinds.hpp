// The table of policy kinds: one row per kind, and the only place a kind is registered. A row
// carries everything the rest of gw needs to know about the kind: its name in specs, the phase
// it runs in, its settings reader (spec keys -> checked canonical JSON, with file:line:col
// diagnostics, files embedded), the JSON Schema of its keys, and the factory that builds its
// filter (filter.hpp) once per table generation. `gwctl validate`, the schema test, gwd and the
// docs all read this table. A new kind is one new file (its settings, reader, filter and row)
// and one line in kinds.cpp.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/diagnostics.hpp"
#include "gw/core/error.hpp"
#include "gw/policy/filter.hpp"
#include "gw/policy/settings.hpp"

namespace gw::policy {

struct Registry; // registry.hpp: state that outlives generations (buckets, key sources)

/// What a factory gets: the policy as the table holds it, and gwd's long-lived state.
struct BuildContext {
  std::string_view policy;   // its name
  std::string_view settings; // canonical JSON, as the kind's reader wrote it
  const Registry* registry = nullptr;
  /// A filter already built for this generation, by policy name (null if none): any_of's
  /// options refer to authentication policies this way.
  std::function<const Filter*(std::string_view name)> find;
};

/// What a policy needs of the authentication policies on its route (KindInfo::identity_need).
struct IdentityNeed {
  bool claims = false; // a token's claims, not only a consumer: a kind that carries_claims
  std::string message; // validate's error for a route that lacks it, after "route NAME: "
  std::string hint;    // "" = none
};

/// One policy kind. Constant-initialised: rows are plain data and function pointers.
struct KindInfo {
  std::string_view name; // `kind = "..."` in a spec
  Phase phase;
  bool authenticates; // identifies the caller (access control and consumer keys need one)
  /// Built after every other kind, because its filter refers to others (any_of).
  bool composite;
  /// JSON Schema of the kind's settings keys: an object whose members are the keys' schemas.
  std::string_view schema;
  /// Checks a policy's settings and returns the canonical JSON to store in the table, with the
  /// files it names read and embedded; nullopt after reporting every problem.
  std::optional<nlohmann::json> (*compile)(const nlohmann::json& settings, const Context& ctx,
                                           Diagnostics& diags);
  /// Builds the filter for one table generation from its canonical settings.
  Result<std::shared_ptr<const Filter>> (*build)(const BuildContext& ctx);
  /// Optional (null = false): a policy that needs an authenticated caller on its route
  /// (access control, a consumer- or claim-keyed rate limit); validate checks the route has one.
  bool (*needs_identity)(const nlohmann::json& canonical);
  /// Optional: policies this one names (any_of's options), checked by validate to exist and
  /// to authenticate.
  std::vector<std::string> (*references)(const nlohmann::json& canonical);

  // The members below have defaults, so a row may leave them out.
  /// Optional, for a policy needs_identity accepts: what exactly it needs, and how validate says
  /// so. Null: any authentication policy, named by a sentence listing the kinds that authenticate.
  IdentityNeed (*identity_need)(std::string_view policy, const nlohmann::json& canonical) = nullptr;
  /// Its filter can hand on a token's claims (jwt; any_of through its options).
  bool carries_claims = false;
  /// A route may hold at most one policy of this kind (cors: one answer to a preflight).
  bool one_per_route = false;
  /// Its filter asks the proxy for I/O (Verdict::await), so it cannot be one of any_of's options,
  /// which are tried one after another without suspending.
  bool performs_io = false;
};

/// Every kind, in a fixed order.
std::span<const KindInfo* const> kinds() noexcept;
/// The kind named `name` (exact), or null.
const KindInfo* find_kind(std::string_view name) noexcept;

} // namespace gw::policy
