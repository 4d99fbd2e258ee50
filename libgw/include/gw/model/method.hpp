// HTTP methods as a small enum and a bit set, so routes test a method with one AND.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw::model {

/// The nine RFC 9110 / RFC 5789 methods, plus `other` for any extension method a client sends.
enum class Method : std::uint8_t {
  GET,
  HEAD,
  POST,
  PUT,
  DELETE,
  CONNECT,
  OPTIONS,
  TRACE,
  PATCH,
  other
};
inline constexpr int kMethodCount = 10;

/// Exact, case-sensitive (RFC 9110 §9.1: method names are case-sensitive).
std::optional<Method> parse_method(std::string_view s) noexcept;
/// Like parse_method, but maps unknown tokens to Method::other (request side).
Method classify_method(std::string_view s) noexcept;
std::string_view to_string(Method m) noexcept;

/// A set of methods; a route without `methods` accepts all of them (`MethodSet::all()`).
class MethodSet {
public:
  constexpr MethodSet() = default;
  static constexpr MethodSet all() { return MethodSet(kAllBits); }
  static constexpr MethodSet from_bits(std::uint16_t b) { return MethodSet(b & kAllBits); }

  constexpr void add(Method m) { bits_ |= bit(m); }
  constexpr bool contains(Method m) const { return (bits_ & bit(m)) != 0; }
  constexpr bool is_all() const { return bits_ == kAllBits; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool subset_of(MethodSet o) const { return (bits_ & ~o.bits_) == 0; }
  constexpr bool intersects(MethodSet o) const { return (bits_ & o.bits_) != 0; }
  constexpr MethodSet operator|(MethodSet o) const { return MethodSet(bits_ | o.bits_); }
  constexpr MethodSet operator&(MethodSet o) const { return MethodSet(bits_ & o.bits_); }
  constexpr MethodSet without(MethodSet o) const { return MethodSet(bits_ & ~o.bits_); }
  constexpr std::uint16_t bits() const { return bits_; }
  constexpr bool operator==(const MethodSet&) const = default;

  /// "GET, HEAD" in enum order (the form of an `Allow` header); "*" for all.
  std::string to_string() const;
  /// The first member, for example requests.
  Method first() const;

private:
  constexpr explicit MethodSet(std::uint16_t b) : bits_(b) {}
  static constexpr std::uint16_t bit(Method m) {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(m));
  }
  static constexpr std::uint16_t kAllBits = (1u << kMethodCount) - 1;
  std::uint16_t bits_ = 0;
};

} // namespace gw::model
