#include "gw/core/diagnostics.hpp"

#include <algorithm>
#include <unordered_map>

namespace gw {

std::string_view to_string(Severity s) noexcept {
  switch (s) {
  case Severity::error:
    return "error";
  case Severity::warning:
    return "warning";
  case Severity::note:
    return "note";
  }
  return "error";
}

std::string Diagnostic::to_string() const {
  std::string out;
  if (!file.empty()) {
    out += file;
    if (line > 0) {
      out += ':' + std::to_string(line);
      if (col > 0) out += ':' + std::to_string(col);
    }
    out += ": ";
  }
  out += gw::to_string(severity);
  out += '[';
  out += code;
  out += "]: ";
  out += message;
  return out;
}

Diagnostic& Diagnostics::add(Severity s, std::string code, const SourceLoc& loc,
                             std::string message) {
  Diagnostic d;
  d.severity = s;
  d.code = std::move(code);
  d.message = std::move(message);
  d.file = std::string(loc.file);
  d.line = loc.line;
  d.col = loc.col;
  if (s == Severity::error) ++errors_;
  if (s == Severity::warning) ++warnings_;
  items_.push_back(std::move(d));
  return items_.back();
}

void Diagnostics::append(const Diagnostics& other) {
  for (const auto& d : other.items_) {
    if (d.severity == Severity::error) ++errors_;
    if (d.severity == Severity::warning) ++warnings_;
    items_.push_back(d);
  }
}

void Diagnostics::sort() {
  std::unordered_map<std::string, std::size_t> rank;
  for (const auto& d : items_)
    rank.try_emplace(d.file, rank.size());
  std::stable_sort(items_.begin(), items_.end(), [&](const Diagnostic& a, const Diagnostic& b) {
    const auto ra = rank[a.file], rb = rank[b.file];
    if (ra != rb) return ra < rb;
    if (a.line != b.line) return a.line < b.line;
    return a.col < b.col;
  });
}

void Diagnostics::promote_warnings() {
  for (auto& d : items_) {
    if (d.severity == Severity::warning) {
      d.severity = Severity::error;
      --warnings_;
      ++errors_;
    }
  }
}

} // namespace gw
