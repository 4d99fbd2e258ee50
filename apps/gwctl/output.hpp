// Rendering for gwctl: diagnostics (compiler-style text with source snippets, JSON, SARIF),
// aligned tables, and colour decisions.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "gw/core/diagnostics.hpp"
#include "gw/spec/document.hpp"

namespace gwctl {

/// Styles for one output stream; empty strings when colour is off.
struct Style {
  bool on = false;
  const char* bold() const { return on ? "\033[1m" : ""; }
  const char* red() const { return on ? "\033[1;31m" : ""; }
  const char* yellow() const { return on ? "\033[1;33m" : ""; }
  const char* green() const { return on ? "\033[32m" : ""; }
  const char* cyan() const { return on ? "\033[36m" : ""; }
  const char* dim() const { return on ? "\033[2m" : ""; }
  const char* reset() const { return on ? "\033[0m" : ""; }
};
Style style_for(std::FILE* f, Color c);

/// Compiler-style: "file:line:col: error[code]: message", the source line with a caret, a hint.
void print_diagnostics(std::FILE* out, const gw::Diagnostics& diags,
                       const gw::spec::SourceSet* sources, const Style& st);
/// "1 route", "2 routes": a count and the noun that goes with it.
std::string plural(std::size_t n, const char* one, const char* many);

/// "2 errors, 1 warning" (or "no problems").
std::string summarize(const gw::Diagnostics& diags);

nlohmann::json diagnostics_json(const gw::Diagnostics& diags);
nlohmann::json diagnostics_sarif(const gw::Diagnostics& diags);

/// Left-aligned columns with two spaces between them.
void print_table(std::FILE* out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, const Style& st,
                 const std::string& indent = "  ");

void print_json(const nlohmann::json& j);

/// A JSON array of strings joined with `sep` ("" for an empty array).
std::string join_strings(const nlohmann::json& strings, std::string_view sep);

} // namespace gwctl
