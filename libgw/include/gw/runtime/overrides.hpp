// Operator overrides of endpoint state (`gwctl endpoint set`), kept by the daemon outside any
// table generation so that they survive reloads. Keyed by upstream name and endpoint address.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace gw::runtime {

/// ready: takes traffic; drain: no new requests, in-flight ones finish, pooled connections
/// stay; maint: no new requests and pooled connections are closed.
enum class EndpointState { ready, drain, maint };

std::string_view to_string(EndpointState s) noexcept;
std::optional<EndpointState> parse_endpoint_state(std::string_view s) noexcept;

using Overrides = std::map<std::pair<std::string, std::string>, EndpointState>;

} // namespace gw::runtime
