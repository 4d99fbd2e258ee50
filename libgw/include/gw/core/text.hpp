// Small string helpers used by config and CLI code: case folding, "did you mean" suggestions,
// quoting for messages; and the Cookie header, read by policies and the session alike.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gw::text {

/// ASCII lowercase copy (HTTP names and hosts are ASCII case-insensitive).
std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b) noexcept;

/// `s` without leading and trailing spaces and tabs (HTTP's OWS, RFC 9110 §5.6.3).
std::string_view trim(std::string_view s) noexcept;

/// Calls `fn(line_no, line)` for each line of a line-based config file (keys files, htpasswd):
/// line numbers count from 1; each line is trimmed of spaces, tabs and a CR (CRLF files); blank
/// lines and '#' comments are skipped.
template <class Fn>
void for_each_config_line(std::string_view text, Fn&& fn) {
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim(line);
    if (!line.empty() && line.front() != '#') fn(line_no, line);
  }
}

/// An RFC 9110 §5.6.2 token, non-empty: what a header name must be.
bool is_token(std::string_view s) noexcept;

/// Levenshtein distance, capped: returns `cap + 1` as soon as the distance exceeds `cap`.
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t cap = 8);

/// The closest candidate to `word` if it is close enough to be a plausible typo.
std::optional<std::string> suggest(std::string_view word, std::span<const std::string> candidates);
std::optional<std::string> suggest(std::string_view word,
                                   std::span<const std::string_view> candidates);

/// `"value"` with control characters and quotes escaped, for messages.
std::string quote(std::string_view s);

/// One JSON pointer reference token (RFC 6901): "~" -> "~0", "/" -> "~1".
std::string pointer_token(std::string_view s);

/// Joins with a separator.
std::string join(std::span<const std::string> parts, std::string_view sep);

/// The value of cookie `name` in a Cookie header ("a=1; b=2"), or nullopt. Names are compared
/// exactly (RFC 6265); the value is returned as sent.
std::optional<std::string_view> cookie_value(std::string_view cookies,
                                             std::string_view name) noexcept;
/// Appends a Cookie header's cookies except those named in `names` (exact names), "; "-separated.
void append_cookies_without(std::string& out, std::string_view cookies,
                            std::span<const std::string> names);

/// Lowercase hexadecimal of bytes.
std::string hex(std::span<const unsigned char> bytes);

} // namespace gw::text
