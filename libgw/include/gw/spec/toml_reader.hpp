// Reads TOML route specs (format version 1) into a spec::Document. Strict: unknown keys and
// wrong types are errors, each reported with file:line:col and, for typos, a suggestion.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "gw/core/diagnostics.hpp"
#include "gw/spec/document.hpp"

namespace gw::spec {

/// Largest spec file accepted; bigger files are refused before parsing.
inline constexpr std::uint64_t kMaxSpecBytes = 64ULL << 20;

/// The only format version this reader understands.
inline constexpr std::int64_t kFormatVersion = 1;

/// Parses `text` (named `name` in diagnostics) and merges it into `doc`.
void read_toml(std::string name, std::string text, SourceSet& sources, Document& doc,
               Diagnostics& diags);

/// Reads the file at `path` and merges it into `doc`; unreadable files become diagnostics.
void read_toml_file(const std::string& path, SourceSet& sources, Document& doc, Diagnostics& diags);

/// The keys the reader accepts at each level, by schema path ("/routes/*/headers/*").
/// The JSON Schema in specs/ is tested against this list so the two never drift.
struct KeyTable {
  std::string_view path;
  std::span<const std::string_view> keys;
};
std::span<const KeyTable> toml_key_tables();

} // namespace gw::spec
