// Diagnostics: every problem found in a configuration, each with severity, code, location and
// message. Config work collects all of them instead of stopping at the first (see model/validate).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gw {

/// A position in a source document. `file` views a name owned by the document's SourceSet.
struct SourceLoc {
  std::string_view file;
  std::uint32_t line = 0; // 1-based; 0 = unknown
  std::uint32_t col = 0;  // 1-based; 0 = unknown
};

enum class Severity : std::uint8_t { error, warning, note };

std::string_view to_string(Severity s) noexcept;

/// One problem. `code` is stable and dotted (`ref.unknown-upstream`); `hint` is optional advice;
/// `pointer` is the JSON pointer of the offending value inside its document, when known.
struct Diagnostic {
  Severity severity = Severity::error;
  std::string code;
  std::string message;
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t col = 0;
  std::string hint;
  std::string pointer;

  Diagnostic& with_hint(std::string h) {
    hint = std::move(h);
    return *this;
  }
  Diagnostic& at_pointer(std::string p) {
    pointer = std::move(p);
    return *this;
  }
  /// `file:line:col: severity[code]: message` (no hint).
  std::string to_string() const;
};

/// An ordered collection of diagnostics. Not thread-safe; one per load.
class Diagnostics {
public:
  Diagnostic& add(Severity s, std::string code, const SourceLoc& loc, std::string message);
  Diagnostic& error(std::string code, const SourceLoc& loc, std::string message) {
    return add(Severity::error, std::move(code), loc, std::move(message));
  }
  Diagnostic& warning(std::string code, const SourceLoc& loc, std::string message) {
    return add(Severity::warning, std::move(code), loc, std::move(message));
  }
  void append(const Diagnostics& other);

  /// Orders by file (in order of first appearance), then line and column; stable otherwise.
  void sort();

  bool has_errors() const noexcept { return errors_ > 0; }
  std::size_t error_count() const noexcept { return errors_; }
  std::size_t warning_count() const noexcept { return warnings_; }
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  const std::vector<Diagnostic>& items() const noexcept { return items_; }
  auto begin() const noexcept { return items_.begin(); }
  auto end() const noexcept { return items_.end(); }

  /// Turns every warning into an error (gwctl --werror).
  void promote_warnings();

private:
  std::vector<Diagnostic> items_;
  std::size_t errors_ = 0;
  std::size_t warnings_ = 0;
};

} // namespace gw
