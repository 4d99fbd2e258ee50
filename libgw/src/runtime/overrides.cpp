#include "gw/runtime/overrides.hpp"

namespace gw::runtime {

std::string_view to_string(EndpointState s) noexcept {
  switch (s) {
  case EndpointState::ready:
    return "ready";
  case EndpointState::drain:
    return "drain";
  case EndpointState::maint:
    return "maint";
  }
  return "ready";
}

std::optional<EndpointState> parse_endpoint_state(std::string_view s) noexcept {
  if (s == "ready") return EndpointState::ready;
  if (s == "drain") return EndpointState::drain;
  if (s == "maint") return EndpointState::maint;
  return std::nullopt;
}

} // namespace gw::runtime
