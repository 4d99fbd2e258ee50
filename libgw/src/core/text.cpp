#include "gw/core/text.hpp"

#include <algorithm>
#include <cstdio>

namespace gw::text {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

namespace {
/// The next cookie of a Cookie header ("name=value" or a bare token, leading spaces dropped;
/// empty when none is left), consumed from `rest`.
std::string_view next_cookie(std::string_view& rest) noexcept {
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    std::string_view c = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    while (!c.empty() && c.front() == ' ')
      c.remove_prefix(1);
    if (!c.empty()) return c;
  }
  return {};
}
std::string_view cookie_name(std::string_view c) noexcept {
  return c.substr(0, c.find('='));
}
} // namespace

std::optional<std::string_view> cookie_value(std::string_view cookies,
                                             std::string_view name) noexcept {
  for (auto c = next_cookie(cookies); !c.empty(); c = next_cookie(cookies)) {
    const auto eq = c.find('=');
    if (eq != std::string_view::npos && c.substr(0, eq) == name) return c.substr(eq + 1);
  }
  return std::nullopt;
}

void append_cookies_without(std::string& out, std::string_view cookies,
                            std::span<const std::string> names) {
  bool first = true;
  for (auto c = next_cookie(cookies); !c.empty(); c = next_cookie(cookies)) {
    if (std::find(names.begin(), names.end(), cookie_name(c)) != names.end()) continue;
    if (!first) out += "; ";
    out += c;
    first = false;
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t cap) {
  const std::size_t la = a.size(), lb = b.size();
  if ((la > lb ? la - lb : lb - la) > cap) return cap + 1;
  std::vector<std::size_t> prev(lb + 1), cur(lb + 1);
  for (std::size_t j = 0; j <= lb; ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= la; ++i) {
    cur[0] = i;
    std::size_t row_min = cur[0];
    for (std::size_t j = 1; j <= lb; ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      row_min = std::min(row_min, cur[j]);
    }
    if (row_min > cap) return cap + 1;
    std::swap(prev, cur);
  }
  return std::min(prev[lb], cap + 1);
}

namespace {
template <class Range>
std::optional<std::string> suggest_impl(std::string_view word, const Range& candidates) {
  // Allow roughly one edit per three characters, at least one: "upstraem" -> "upstream".
  const std::size_t cap = std::max<std::size_t>(1, word.size() / 3);
  std::optional<std::string> best;
  std::size_t best_d = cap + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(lower(word), lower(c), cap);
    if (d < best_d) {
      best_d = d;
      best = std::string(c);
    }
  }
  return best;
}
} // namespace

std::optional<std::string> suggest(std::string_view word, std::span<const std::string> candidates) {
  return suggest_impl(word, candidates);
}
std::optional<std::string> suggest(std::string_view word,
                                   std::span<const std::string_view> candidates) {
  return suggest_impl(word, candidates);
}

std::string pointer_token(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

std::string join(std::span<const std::string> parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

} // namespace gw::text
