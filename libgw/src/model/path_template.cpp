#include "gw/model/path_template.hpp"

#include <algorithm>

#include "gw/uri/normalize.hpp"

namespace gw::model {
namespace {

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

/// Lazy, backtracking match of parts[k..] against s[pos..].
bool match_from(const std::vector<TemplatePart>& parts, std::size_t k, std::string_view s,
                std::size_t pos, std::string_view* out) {
  if (k == parts.size()) return pos == s.size();
  const TemplatePart& p = parts[k];
  if (!p.param) {
    if (s.compare(pos, p.text.size(), p.text) != 0) return false;
    return match_from(parts, k + 1, s, pos + p.text.size(), out);
  }
  if (k + 1 == parts.size()) {
    if (pos >= s.size()) return false; // parameters are non-empty
    *out = s.substr(pos);
    return true;
  }
  // The next part is a literal (adjacent parameters are rejected at parse time).
  const std::string& lit = parts[k + 1].text;
  for (std::size_t at = s.find(lit, pos + 1); at != std::string_view::npos;
       at = s.find(lit, at + 1)) {
    *out = s.substr(pos, at - pos);
    if (match_from(parts, k + 2, s, at + lit.size(), out + 1)) return true;
  }
  return false;
}

Result<std::string> canonical_literal(std::string_view lit) {
  // A literal part of a segment is never a dot segment by itself ("{name}.{ext}"); whole-segment
  // dot literals are rejected by the caller. Prefix a letter so canonicalisation sees a plain
  // segment.
  if (lit.find('/') != std::string_view::npos)
    return fail(uri::errc::bad_template, "unexpected \"/\"");
  auto c = uri::canonical_spec_path("/a" + std::string(lit));
  if (!c) return std::unexpected(c.error());
  return c->substr(2);
}

} // namespace

std::size_t TemplateSegment::param_count() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(parts.begin(), parts.end(), [](const TemplatePart& p) { return p.param; }));
}

std::size_t TemplateSegment::literal_chars() const noexcept {
  std::size_t n = 0;
  for (const auto& p : parts)
    if (!p.param) n += p.text.size();
  return n;
}

bool TemplateSegment::match(std::string_view seg, std::string_view* out) const noexcept {
  return match_from(parts, 0, seg, 0, out);
}

std::string TemplateSegment::text() const {
  std::string s;
  for (const auto& p : parts) {
    if (p.param)
      s += "{" + p.text + "}";
    else
      s += p.text;
  }
  return s;
}

Result<PathTemplate> PathTemplate::parse(std::string_view text) {
  if (text.empty() || text[0] != '/')
    return fail(uri::errc::not_origin_form, "a template must start with \"/\"");
  PathTemplate t;
  std::size_t pos = 1;
  for (;;) {
    const std::size_t slash = text.find('/', pos);
    const bool last = slash == std::string_view::npos;
    const std::string_view raw = text.substr(pos, last ? std::string_view::npos : slash - pos);
    if (raw.empty() && !last)
      return fail(uri::errc::empty_segment,
                  "empty segment (\"//\"): request paths are normalised with \"//\" collapsed");
    if (!t.rest_.empty())
      return fail(uri::errc::bad_template, "{" + t.rest_ + "...} must be the last segment");

    TemplateSegment seg;
    std::size_t i = 0;
    while (i < raw.size()) {
      if (raw[i] == '}') return fail(uri::errc::bad_template, "unbalanced \"}\"");
      if (raw[i] != '{') {
        const std::size_t open = raw.find_first_of("{}", i);
        const std::string_view lit =
            raw.substr(i, open == std::string_view::npos ? raw.npos : open - i);
        auto canon = canonical_literal(lit);
        if (!canon) return std::unexpected(canon.error());
        seg.parts.push_back(TemplatePart{false, std::move(*canon)});
        i += lit.size();
        continue;
      }
      const std::size_t close = raw.find('}', i);
      if (close == std::string_view::npos) return fail(uri::errc::bad_template, "unbalanced \"{\"");
      std::string_view name = raw.substr(i + 1, close - i - 1);
      if (name.find('{') != std::string_view::npos)
        return fail(uri::errc::bad_template, "nested \"{\"");
      bool rest = false;
      if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
        rest = true;
        name.remove_suffix(3);
      }
      if (name.empty()) return fail(uri::errc::bad_template, "empty parameter name \"{}\"");
      if (!std::all_of(name.begin(), name.end(), valid_name_char))
        return fail(uri::errc::bad_template,
                    "parameter name \"" + std::string(name) +
                        "\" may only contain letters, digits, \"_\", \"-\" and \".\"");
      if (std::find(t.names_.begin(), t.names_.end(), name) != t.names_.end())
        return fail(uri::errc::bad_template,
                    "duplicate parameter name \"" + std::string(name) + "\"");
      if (!seg.parts.empty() && seg.parts.back().param)
        return fail(uri::errc::bad_template, "parameters \"{" + seg.parts.back().text +
                                                 "}\" and \"{" + std::string(name) +
                                                 "}\" are adjacent; put a literal between them");
      if (rest) {
        if (i != 0 || close + 1 != raw.size())
          return fail(uri::errc::bad_template,
                      "{" + std::string(name) + "...} must be a whole segment");
        t.rest_ = std::string(name);
      } else {
        seg.parts.push_back(TemplatePart{true, std::string(name)});
      }
      t.names_.emplace_back(name);
      i = close + 1;
    }
    if (t.rest_.empty()) {
      if (seg.literal() && (seg.parts[0].text == "." || seg.parts[0].text == ".."))
        return fail(uri::errc::dot_segment, "\".\" and \"..\" segments are not allowed");
      if (seg.parts.empty()) seg.parts.push_back(TemplatePart{false, ""}); // trailing "/"
      t.literal_chars_ += seg.literal_chars();
      t.segments_.push_back(std::move(seg));
    }
    if (last) break;
    pos = slash + 1;
  }
  if (t.names_.size() > kMaxTemplateParams)
    return fail(uri::errc::bad_template,
                "more than " + std::to_string(kMaxTemplateParams) + " parameters");
  // Keep the rest parameter last in names_ (it can only be declared last anyway).
  return t;
}

std::string PathTemplate::text() const {
  std::string s;
  for (const auto& seg : segments_)
    s += "/" + seg.text();
  if (has_rest()) s += "/{" + rest_ + "...}";
  return s;
}

std::string PathTemplate::shape() const {
  std::string s;
  for (const auto& seg : segments_) {
    s += '/';
    for (const auto& p : seg.parts)
      s += p.param ? std::string("{}") : p.text;
  }
  if (has_rest()) s += "/{...}";
  return s;
}

std::string PathTemplate::example(std::string_view fill) const {
  std::string s;
  for (const auto& seg : segments_) {
    s += '/';
    for (const auto& p : seg.parts)
      s += p.param ? std::string(fill) : p.text;
  }
  if (has_rest()) s += "/" + std::string(fill);
  return s;
}

} // namespace gw::model
