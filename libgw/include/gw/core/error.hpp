// gw::Error and gw::Result: the error type of fallible pure functions.
// I/O code uses boost::system::error_code; config code returns Diagnostics (diagnostics.hpp).
#pragma once

#include <expected>
#include <string>
#include <system_error>
#include <utility>

namespace gw {

/// Generic error conditions shared by modules that have no enum of their own.
enum class errc {
  ok = 0,
  invalid_argument,
  io_error,
  too_large,
  not_found,
  unsupported,
};

const std::error_category& gw_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), gw_category()};
}

/// A code plus a human message (the message names the file, offset or value at fault).
struct Error {
  std::error_code code;
  std::string message;

  Error() = default;
  Error(std::error_code c, std::string msg) : code(c), message(std::move(msg)) {}
  template <class E>
  requires std::is_error_code_enum_v<E> Error(E e, std::string msg)
      : code(make_error_code(e)), message(std::move(msg)) {}

  /// "<category>.<code name>", e.g. "table.checksum_mismatch": the code control replies carry.
  std::string code_name() const;
  /// "<category>.<code name>: message", the form printed by gwctl.
  std::string to_string() const;
};

template <class T>
using Result = std::expected<T, Error>;

/// Shorthand for returning an error from a function that returns Result<T>.
template <class E>
std::unexpected<Error> fail(E e, std::string msg) {
  return std::unexpected<Error>(Error(e, std::move(msg)));
}

} // namespace gw

template <>
struct std::is_error_code_enum<gw::errc> : std::true_type {};
