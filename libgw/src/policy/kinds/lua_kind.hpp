// Private: the `lua` policy kind, a plugin written in Lua 5.4 against a small Kong-like API
// (gw.request, gw.response, gw.ctx, ...; README.md "Lua plugins"). Its row goes in the table of
// kinds (kinds.cpp); lua_sandbox.hpp is the confined Lua state it runs in.
#pragma once

#include <cstddef>

#include "gw/policy/kinds.hpp"

namespace gw::policy {

/// `kind = "lua"`: phase plugin, not authenticating. Settings: `script` (a file relative to the
/// spec, embedded at compile time), `max_instructions`, `max_memory`, `response_body` (`stream`
/// or `whole`: the filter's body mode, for the script's on_response_body).
extern const KindInfo kLuaKind;

/// Lua states the calling thread holds (one per live lua filter that ran on it), after dropping
/// those of filters that no longer exist. For tests and stats.
std::size_t lua_worker_states();

} // namespace gw::policy
