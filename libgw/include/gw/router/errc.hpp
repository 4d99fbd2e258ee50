// Error codes of the router module.
#pragma once

#include <system_error>

namespace gw::router {

enum class errc { ok = 0, bad_route = 1 };

const std::error_category& router_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), router_category()};
}

} // namespace gw::router

template <>
struct std::is_error_code_enum<gw::router::errc> : std::true_type {};
