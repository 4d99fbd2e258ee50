#include "gw/model/method.hpp"

#include <array>

namespace gw::model {
namespace {
constexpr std::array<std::string_view, kMethodCount> kNames = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER"};
}

std::optional<Method> parse_method(std::string_view s) noexcept {
  for (int i = 0; i < kMethodCount - 1; ++i)
    if (kNames[static_cast<std::size_t>(i)] == s) return static_cast<Method>(i);
  return std::nullopt;
}

Method classify_method(std::string_view s) noexcept {
  // Hot path: dispatch on length and first byte before comparing.
  switch (s.size()) {
  case 3:
    if (s == "GET") return Method::GET;
    if (s == "PUT") return Method::PUT;
    break;
  case 4:
    if (s == "POST") return Method::POST;
    if (s == "HEAD") return Method::HEAD;
    break;
  case 5:
    if (s == "PATCH") return Method::PATCH;
    if (s == "TRACE") return Method::TRACE;
    break;
  case 6:
    if (s == "DELETE") return Method::DELETE;
    break;
  case 7:
    if (s == "OPTIONS") return Method::OPTIONS;
    if (s == "CONNECT") return Method::CONNECT;
    break;
  default:
    break;
  }
  return Method::other;
}

std::string_view to_string(Method m) noexcept {
  return kNames[static_cast<std::size_t>(m)];
}

std::string MethodSet::to_string() const {
  if (is_all()) return "*";
  std::string out;
  for (int i = 0; i < kMethodCount; ++i) {
    const auto m = static_cast<Method>(i);
    if (!contains(m)) continue;
    if (!out.empty()) out += ", ";
    out += model::to_string(m);
  }
  return out;
}

Method MethodSet::first() const {
  for (int i = 0; i < kMethodCount; ++i)
    if (contains(static_cast<Method>(i))) return static_cast<Method>(i);
  return Method::GET;
}

} // namespace gw::model
