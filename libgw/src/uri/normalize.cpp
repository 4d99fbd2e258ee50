#include "gw/uri/normalize.hpp"

#include <array>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>

namespace gw::uri {
namespace {

class UriCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "uri"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
    case errc::ok:
      return "ok";
    case errc::not_origin_form:
      return "not_origin_form";
    case errc::invalid_character:
      return "invalid_character";
    case errc::bad_percent_encoding:
      return "bad_percent_encoding";
    case errc::above_root:
      return "above_root";
    case errc::dot_segment:
      return "dot_segment";
    case errc::bad_template:
      return "bad_template";
    case errc::empty_segment:
      return "empty_segment";
    }
    return "unknown";
  }
};

constexpr bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}
constexpr bool is_sub_delim(unsigned char c) {
  return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
         c == '+' || c == ',' || c == ';' || c == '=';
}
constexpr bool is_pchar(unsigned char c) {
  return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@';
}
/// pchar without pct-encoded (RFC 3986 §3.3), as a table for the hot path.
constexpr std::array<bool, 256> kPchar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = is_pchar(static_cast<unsigned char>(c));
  return t;
}();
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
constexpr char kHex[] = "0123456789ABCDEF";

/// Appends the canonical form of one already-validated segment's bytes.
/// Returns false on a malformed percent escape.
bool append_segment(std::string_view seg, std::string& out, bool encode_invalid, bool keep_braces) {
  for (std::size_t i = 0; i < seg.size(); ++i) {
    const auto c = static_cast<unsigned char>(seg[i]);
    if (c == '%') {
      if (i + 2 >= seg.size()) return false;
      const int hi = hex_value(seg[i + 1]), lo = hex_value(seg[i + 2]);
      if (hi < 0 || lo < 0) return false;
      const auto v = static_cast<unsigned char>(hi * 16 + lo);
      if (is_unreserved(v)) {
        out += static_cast<char>(v);
      } else {
        out += '%';
        out += kHex[hi];
        out += kHex[lo];
      }
      i += 2;
    } else if (is_pchar(c) || (keep_braces && (c == '{' || c == '}'))) {
      out += static_cast<char>(c);
    } else if (encode_invalid) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      return false;
    }
  }
  return true;
}

/// Walks the segments of `path` (which starts with "/") and builds the canonical form in `out`.
std::error_code canonicalize(std::string_view path, std::string& out, bool spec_side,
                             bool keep_braces) {
  out.clear();
  out.reserve(path.size());
  std::size_t pos = 1; // past the leading "/"
  for (;;) {
    const std::size_t slash = path.find('/', pos);
    const bool last = slash == std::string_view::npos;
    const std::string_view seg = path.substr(pos, last ? std::string_view::npos : slash - pos);
    const std::size_t seg_start = out.size();
    out += '/';
    if (!append_segment(seg, out, spec_side, keep_braces)) {
      // Tell a bad escape from a bad byte for a precise error.
      for (std::size_t i = 0; i < seg.size(); ++i)
        if (seg[i] == '%' &&
            (i + 2 >= seg.size() || hex_value(seg[i + 1]) < 0 || hex_value(seg[i + 2]) < 0))
          return errc::bad_percent_encoding;
      return errc::invalid_character;
    }
    const std::string_view canon = std::string_view(out).substr(seg_start + 1);
    if (canon.empty()) {
      if (spec_side && !last) return errc::empty_segment;
      if (!last) out.resize(seg_start); // "//" collapses; a final empty segment is a trailing "/"
    } else if (canon == "." || canon == "..") {
      if (spec_side) return errc::dot_segment;
      const bool up = canon == "..";
      out.resize(seg_start);
      if (up) {
        const std::size_t prev = out.rfind('/');
        if (prev == std::string::npos) return errc::above_root;
        out.resize(prev);
      }
      if (last) out += '/';
    }
    if (last) break;
    pos = slash + 1;
  }
  if (out.empty()) out = "/";
  return {};
}

} // namespace

const std::error_category& uri_category() noexcept {
  static const UriCategory cat;
  return cat;
}

Result<Target> parse_target(std::string_view target, std::string& buf) {
  if (target.empty() || target[0] != '/')
    return fail(errc::not_origin_form, "request target must start with \"/\"");
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  Target t;
  if (q != std::string_view::npos) {
    t.query = target.substr(q + 1);
    // RFC 3986 §3.4: query = *( pchar / "/" / "?" ); escapes must be well formed.
    for (std::size_t i = 0; i < t.query.size(); ++i) {
      const auto c = static_cast<unsigned char>(t.query[i]);
      if (kPchar[c] || c == '/' || c == '?') continue;
      if (c == '%' && i + 2 < t.query.size() && hex_value(t.query[i + 1]) >= 0 &&
          hex_value(t.query[i + 2]) >= 0) {
        i += 2;
        continue;
      }
      if (c == '%') return fail(errc::bad_percent_encoding, "malformed percent escape in query");
      return fail(errc::invalid_character, "query contains a character not allowed by RFC 3986");
    }
  }
  // Fast path: most paths are already canonical (no escapes, no "//", no dot segments), and are
  // used in place without a copy.
  bool canonical = true;
  for (std::size_t i = 0; i < path.size() && canonical; ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if (c == '/') {
      if (i + 1 < path.size() && (path[i + 1] == '/' || path[i + 1] == '.')) canonical = false;
    } else if (!kPchar[c]) {
      canonical = false; // an escape, or a byte that the slow path will reject
    }
  }
  if (canonical) {
    t.path = path;
    return t;
  }
  if (auto ec = canonicalize(path, buf, false, false)) {
    switch (static_cast<errc>(ec.value())) {
    case errc::above_root:
      return fail(errc::above_root, "\"..\" climbs above the root");
    case errc::bad_percent_encoding:
      return fail(errc::bad_percent_encoding, "malformed percent escape in path");
    default:
      return fail(errc::invalid_character, "path contains a character not allowed by RFC 3986");
    }
  }
  t.path = buf;
  return t;
}

Result<std::string> canonical_spec_path(std::string_view path, bool keep_braces) {
  if (path.empty() || path[0] != '/') return fail(errc::not_origin_form, "must start with \"/\"");
  if (path.find('?') != std::string_view::npos)
    return fail(errc::invalid_character, "must not contain \"?\" (use a query matcher)");
  if (path.find('#') != std::string_view::npos)
    return fail(errc::invalid_character, "must not contain \"#\"");
  std::string out;
  if (auto ec = canonicalize(path, out, true, keep_braces)) {
    switch (static_cast<errc>(ec.value())) {
    case errc::dot_segment:
      return fail(errc::dot_segment, "must not contain \".\" or \"..\" segments");
    case errc::bad_percent_encoding:
      return fail(errc::bad_percent_encoding, "malformed percent escape");
    case errc::empty_segment:
      return fail(errc::empty_segment,
                  "must not contain an empty segment (\"//\"); request paths "
                  "are normalised with \"//\" collapsed, so it could never match");
    default:
      return fail(errc::invalid_character, "invalid character");
    }
  }
  return out;
}

Result<UrlParts> split_url(std::string_view url) {
  UrlParts out;
  if (!url.empty() && url[0] == '/') {
    out.target = std::string(url);
    return out;
  }
  auto u = boost::urls::parse_uri(boost::core::string_view(url.data(), url.size()));
  if (!u) return fail(errc::invalid_character, "not a URL: " + std::string(url));
  out.host = std::string(u->encoded_host());
  out.target = std::string(u->encoded_path());
  if (out.target.empty()) out.target = "/";
  if (u->has_query()) out.target += "?" + std::string(u->encoded_query());
  return out;
}

void for_each_query_param(std::string_view query,
                          const std::function<bool(std::string_view, std::string_view)>& fn) {
  if (query.empty()) return; // also keeps a null data() away from Boost.URL
  // Boost.URL 1.81's parse_query rebuilds its view from data() alone, measuring it with strlen
  // (boostorg/url#757): given a view into a request buffer it reads on past the query, into the
  // rest of the head or stale heap bytes, and the last value comes out wrong. It gets a
  // NUL-terminated copy.
  const std::string copy(query);
  if (copy.find('\0') != std::string::npos) return;
  auto encoded = boost::urls::parse_query(boost::core::string_view(copy.data(), copy.size()));
  if (!encoded) return;
  boost::urls::encoding_opts opt;
  opt.space_as_plus = true;
  for (const auto& p : *encoded) {
    const std::string key = p.key.decode(opt);
    const std::string value = p.has_value ? p.value.decode(opt) : std::string();
    if (!fn(key, value)) return;
  }
}

void append_query_component(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (is_unreserved(u)) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

void decode_query_component(std::string_view s, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
}

} // namespace gw::uri
