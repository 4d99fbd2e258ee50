// Path templates: "/pets/{id}", "/files/{name}.{ext}", "/compare/{base}...{head}",
// "/static/{rest...}". A `{name}` matches a non-empty part of one segment; several expressions and
// literals may share a segment; `{name...}` matches the non-empty rest of the path and may only be
// the whole last segment. Within a segment, expressions match lazily (the shortest value that lets
// the rest of the segment match), so "/compare/a...b...c" gives base="a", head="b...c".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gw/core/error.hpp"

namespace gw::model {

inline constexpr std::size_t kMaxTemplateParams = 16;

struct TemplatePart {
  bool param = false;
  std::string text; // canonical literal text, or the parameter name
};

/// One segment: alternating literals and parameters (never two parameters side by side).
struct TemplateSegment {
  std::vector<TemplatePart> parts;

  bool literal() const noexcept { return parts.size() == 1 && !parts[0].param; }
  bool single_param() const noexcept { return parts.size() == 1 && parts[0].param; }
  std::size_t param_count() const noexcept;
  std::size_t literal_chars() const noexcept;
  /// Matches `seg` (canonical, no "/"); on success writes each parameter's value, in order, to
  /// `out` (which must have room for param_count() values).
  bool match(std::string_view seg, std::string_view* out) const noexcept;
  /// The segment as written: "{name}.{ext}".
  std::string text() const;
};

class PathTemplate {
public:
  /// Parses and canonicalises a template; errors name the problem (unbalanced braces, duplicate
  /// parameter names, adjacent parameters, misplaced `{rest...}`).
  static Result<PathTemplate> parse(std::string_view text);

  const std::vector<TemplateSegment>& segments() const noexcept { return segments_; }
  bool has_rest() const noexcept { return !rest_.empty(); }
  const std::string& rest_name() const noexcept { return rest_; }
  /// Every parameter name in order (the rest parameter last).
  const std::vector<std::string>& param_names() const noexcept { return names_; }
  /// Literal characters outside parameters, slashes excluded (the precedence measure).
  std::size_t literal_chars() const noexcept { return literal_chars_; }
  /// Canonical text, e.g. "/files/{name}.{ext}".
  std::string text() const;
  /// Canonical text with parameter names erased ("/files/{}.{}"): equal shapes match equal paths.
  std::string shape() const;
  /// An example path it matches, each parameter replaced by `fill`.
  std::string example(std::string_view fill = "1") const;
  /// True when the template has no parameters at all (it is an exact path).
  bool is_literal() const noexcept { return names_.empty(); }

private:
  std::vector<TemplateSegment> segments_; // excludes the rest segment
  std::vector<std::string> names_;
  std::string rest_;
  std::size_t literal_chars_ = 0;
};

} // namespace gw::model
