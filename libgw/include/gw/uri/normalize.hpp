// The one canonical form of a request path. The router matches it and the proxy forwards it, so
// no encoding trick can reach a route other than the one that was matched (RFC 3986 §6.2.2).
//
// Canonical form:
//  - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded; every other
//    %XX stays encoded, with uppercase hex. %2F and %5C are never path separators;
//  - dot segments ("." and "..", also when encoded as %2E) are removed (RFC 3986 §5.2.4); a ".."
//    that would climb above the root is an error;
//  - runs of "/" collapse to one ("//a" -> "/a"); a trailing "/" is kept and significant;
//  - the query is split off untouched.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#include "gw/core/error.hpp"

namespace gw::uri {

enum class errc {
  ok = 0,
  not_origin_form = 1,  // does not start with "/"
  invalid_character,    // a byte RFC 3986 does not allow in a path or query
  bad_percent_encoding, // "%" not followed by two hex digits
  above_root,           // ".." past "/"
  dot_segment,          // dot segments in a spec path (they are only resolved in requests)
  bad_template,         // spec-side: malformed {param} syntax
  empty_segment,        // spec-side: "//" inside a path
};
const std::error_category& uri_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), uri_category()};
}

/// A parsed origin-form request target. `path` views the caller's buffer.
struct Target {
  std::string_view path;  // canonical
  std::string_view query; // raw, without "?"
};

/// Validates and canonicalises an origin-form request target ("/a/%7Eb?x=1"). A path that is
/// already canonical is returned in place (viewing `target`); otherwise the canonical form is
/// built in `buf` (reused across requests to avoid allocation). Errors map to 400 Bad Request.
Result<Target> parse_target(std::string_view target, std::string& buf);

/// Canonicalises a path written in a spec (exact path, prefix or a template's literal text).
/// Characters outside RFC 3986 `pchar` are percent-encoded rather than rejected; dot segments
/// are an error. `keep_braces` leaves `{` and `}` alone for templates.
Result<std::string> canonical_spec_path(std::string_view path, bool keep_braces = false);

/// An absolute URL ("http://api.example.com:8080/a?b") or an origin-form target ("/a?b") split
/// into the host (without port; empty for origin-form) and the origin-form target.
struct UrlParts {
  std::string host;
  std::string target;
};
Result<UrlParts> split_url(std::string_view url);

/// Calls `fn(name, value)` for each query parameter, percent- and `+`-decoded.
/// Stops early when `fn` returns false. Malformed queries yield no parameters.
void for_each_query_param(std::string_view query,
                          const std::function<bool(std::string_view, std::string_view)>& fn);

/// One query parameter name or value, percent- and `+`-decoded as for_each_query_param does
/// (a malformed escape stays as it is): how a raw "name=value" pair's name is compared with the
/// names policies use. Replaces the contents of `out`.
void decode_query_component(std::string_view s, std::string& out);

/// Calls `fn(pair, name)` for each '&'-separated pair of a raw query, empty ones included: the
/// pair as sent, and its name decoded (held in `buf`, reused so the request path need not
/// allocate). For code that forwards or logs a query with some parameters changed.
template <class Fn>
void for_each_raw_param(std::string_view query, std::string& buf, Fn&& fn) {
  while (true) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    decode_query_component(pair.substr(0, pair.find('=')), buf);
    fn(pair, std::string_view(buf));
    if (amp == std::string_view::npos) return;
    query.remove_prefix(amp + 1);
  }
}

/// Appends `s` percent-encoded for a query (everything but RFC 3986 unreserved characters).
void append_query_component(std::string& out, std::string_view s);

} // namespace gw::uri

template <>
struct std::is_error_code_enum<gw::uri::errc> : std::true_type {};
