#include "output.hpp"

#include <algorithm>
#include <unistd.h>

#include "gw/core/text.hpp"

namespace gwctl {

Style style_for(std::FILE* f, Color c) {
  Style s;
  if (c == Color::always)
    s.on = true;
  else if (c == Color::never)
    s.on = false;
  else
    s.on = ::isatty(::fileno(f)) && !std::getenv("NO_COLOR") &&
           std::string_view(std::getenv("TERM") ? std::getenv("TERM") : "") != "dumb";
  return s;
}

namespace {

/// The text of line `line` (1-based) of the named source, if it was loaded.
std::optional<std::string_view> source_line(const gw::spec::SourceSet* sources,
                                            const std::string& file, std::uint32_t line) {
  if (!sources || line == 0) return std::nullopt;
  for (const auto& f : sources->files()) {
    if (f->name != file) continue;
    std::string_view text = f->text;
    std::size_t start = 0;
    for (std::uint32_t l = 1; l < line; ++l) {
      start = text.find('\n', start);
      if (start == std::string_view::npos) return std::nullopt;
      ++start;
    }
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view s = text.substr(start, end - start);
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    if (s.size() > 200) return std::nullopt; // minified or binary: no snippet
    return s;
  }
  return std::nullopt;
}

} // namespace

void print_diagnostics(std::FILE* out, const gw::Diagnostics& diags,
                       const gw::spec::SourceSet* sources, const Style& st) {
  for (const auto& d : diags) {
    if (!d.file.empty()) {
      std::fprintf(out, "%s%s", st.bold(), d.file.c_str());
      if (d.line) std::fprintf(out, ":%u", d.line);
      if (d.line && d.col) std::fprintf(out, ":%u", d.col);
      std::fprintf(out, ":%s ", st.reset());
    }
    const char* color = d.severity == gw::Severity::error     ? st.red()
                        : d.severity == gw::Severity::warning ? st.yellow()
                                                              : st.cyan();
    std::fprintf(out, "%s%s[%s]%s: %s%s%s\n", color, std::string(gw::to_string(d.severity)).c_str(),
                 d.code.c_str(), st.reset(), st.bold(), d.message.c_str(), st.reset());
    if (auto line = source_line(sources, d.file, d.line)) {
      // Tabs become single spaces so the caret lines up.
      std::string text(*line);
      std::replace(text.begin(), text.end(), '\t', ' ');
      std::fprintf(out, "%s%5u |%s %s\n", st.dim(), d.line, st.reset(), text.c_str());
      if (d.col > 0 && d.col <= text.size() + 1)
        std::fprintf(out, "%s      |%s %*s%s^%s\n", st.dim(), st.reset(),
                     static_cast<int>(d.col - 1), "", color, st.reset());
    }
    if (!d.hint.empty())
      std::fprintf(out, "  %shint:%s %s\n", st.cyan(), st.reset(), d.hint.c_str());
  }
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string summarize(const gw::Diagnostics& diags) {
  if (diags.error_count() == 0 && diags.warning_count() == 0) return "no problems";
  std::string s;
  if (diags.error_count()) s = plural(diags.error_count(), "error", "errors");
  if (diags.warning_count())
    s += (s.empty() ? "" : ", ") + plural(diags.warning_count(), "warning", "warnings");
  return s;
}

nlohmann::json diagnostics_json(const gw::Diagnostics& diags) {
  auto arr = nlohmann::json::array();
  for (const auto& d : diags) {
    nlohmann::json j = {{"severity", gw::to_string(d.severity)},
                        {"code", d.code},
                        {"message", d.message},
                        {"file", d.file},
                        {"line", d.line},
                        {"column", d.col}};
    if (!d.hint.empty()) j["hint"] = d.hint;
    if (!d.pointer.empty()) j["pointer"] = d.pointer;
    arr.push_back(std::move(j));
  }
  return {
      {"errors", diags.error_count()}, {"warnings", diags.warning_count()}, {"diagnostics", arr}};
}

nlohmann::json diagnostics_sarif(const gw::Diagnostics& diags) {
  auto rules = nlohmann::json::array();
  std::vector<std::string> seen;
  auto results = nlohmann::json::array();
  for (const auto& d : diags) {
    if (std::find(seen.begin(), seen.end(), d.code) == seen.end()) {
      seen.push_back(d.code);
      rules.push_back({{"id", d.code}, {"name", d.code}});
    }
    nlohmann::json r = {
        {"ruleId", d.code},
        {"level", d.severity == gw::Severity::error     ? "error"
                  : d.severity == gw::Severity::warning ? "warning"
                                                        : "note"},
        {"message",
         {{"text", d.hint.empty() ? d.message : d.message + " (hint: " + d.hint + ")"}}}};
    if (!d.file.empty()) {
      nlohmann::json phys = {{"artifactLocation", {{"uri", d.file}}}};
      if (d.line > 0) {
        phys["region"] = {{"startLine", d.line}};
        if (d.col > 0) phys["region"]["startColumn"] = d.col;
      }
      nlohmann::json location = {{"physicalLocation", phys}};
      if (!d.pointer.empty())
        location["logicalLocations"] = {{{"fullyQualifiedName", d.pointer}, {"kind", "member"}}};
      r["locations"] = nlohmann::json::array({location});
    }
    results.push_back(std::move(r));
  }
  return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
          {"version", "2.1.0"},
          {"runs",
           {{{"tool", {{"driver", {{"name", "gwctl"}, {"version", GW_VERSION}, {"rules", rules}}}}},
             {"results", results}}}}};
}

void print_table(std::FILE* out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, const Style& st,
                 const std::string& indent) {
  std::vector<std::size_t> w(header.size(), 0);
  for (std::size_t i = 0; i < header.size(); ++i)
    w[i] = header[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < w.size(); ++i)
      w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& cells, bool head) {
    std::string s = indent;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      s += cells[i];
      if (i + 1 < cells.size()) s += std::string(w[i] - cells[i].size() + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ')
      s.pop_back();
    std::fprintf(out, "%s%s%s\n", head ? st.bold() : "", s.c_str(), head ? st.reset() : "");
  };
  line(header, true);
  for (const auto& r : rows)
    line(r, false);
}

std::string join_strings(const nlohmann::json& strings, std::string_view sep) {
  return gw::text::join(strings.get<std::vector<std::string>>(), sep);
}

void print_json(const nlohmann::json& j) {
  std::printf("%s\n", j.dump(2).c_str());
}

} // namespace gwctl
