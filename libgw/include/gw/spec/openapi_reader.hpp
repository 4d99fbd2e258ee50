// Reads OpenAPI 3.0/3.1 and Swagger 2.0 documents (JSON or YAML) into a spec::Document: one route
// per operation, upstreams from servers, policies from security schemes. Nothing is lost
// silently: every construct dropped or approximated becomes a diagnostic with its JSON pointer
// and line (`openapi.dropped`, `openapi.approximated`), which `gwctl openapi import --strict`
// turns into a failure. Read next: toml_writer.hpp (the editable TOML an import writes).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gw/core/diagnostics.hpp"
#include "gw/spec/document.hpp"

namespace gw::spec {

struct OpenApiOptions {
  /// --upstream NAME=URL: the endpoint of upstream NAME (a server's upstream or an x-gw-upstream).
  std::vector<std::pair<std::string, std::string>> upstreams;
};

/// What an import produced, for the report gwctl prints.
struct ImportSummary {
  std::string source; // the document's path (or name) as given to read_openapi
  std::string format; // "OpenAPI 3.1.0 (YAML)", "Swagger 2.0 (JSON)"
  std::string title;
  std::size_t operations = 0;
  std::size_t routes = 0, upstreams = 0, policies = 0;
};

/// The x-gw-* extensions the reader understands (specs/gw-openapi.schema.json documents them).
std::span<const std::string_view> openapi_extensions();

/// True when `text` is an OpenAPI or Swagger document (content sniffing, not extensions).
bool looks_like_openapi(std::string_view text);

void read_openapi(std::string name, std::string text, SourceSet& sources, Document& doc,
                  Diagnostics& diags, const OpenApiOptions& opts = {},
                  ImportSummary* summary = nullptr);

void read_openapi_file(const std::string& path, SourceSet& sources, Document& doc,
                       Diagnostics& diags, const OpenApiOptions& opts = {},
                       ImportSummary* summary = nullptr);

/// Largest OpenAPI document accepted (GitHub's whole API is 3 MB).
inline constexpr std::uint64_t kMaxOpenApiBytes = 32ULL << 20;

} // namespace gw::spec
