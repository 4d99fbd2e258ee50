// load::load: the config path up to a matcher, shared by every gwctl command. Sniffs each input
// by content (a .gwrt table starts with its magic; an OpenAPI document is JSON or has a top-level
// `openapi:`/`swagger:` key; anything else is a TOML spec), merges specs, validates, builds the
// RouteTable and runs the conflict analysis. Every command that reads specs goes through here, so
// what `gwctl validate` refuses (conflict errors such as route.duplicate included) no command
// accepts.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "gw/core/diagnostics.hpp"
#include "gw/model/config.hpp"
#include "gw/router/route_table.hpp"
#include "gw/spec/document.hpp"
#include "gw/spec/openapi_reader.hpp"
#include "gw/table/format.hpp"

namespace gw::load {

struct Options {
  spec::OpenApiOptions openapi;
  spec::Document* document = nullptr; // when set, receives the merged spec document (not tables)
};

struct Loaded {
  Diagnostics diags;
  spec::SourceSet sources;                     // source texts, for diagnostics
  std::shared_ptr<const model::Config> config; // null when there were errors
  std::optional<router::RouteTable> routes;    // built whenever config is
  std::optional<table::TableInfo> table;       // set when the input was a compiled table
  std::vector<spec::ImportSummary> imports;    // one per OpenAPI input

  bool ok() const noexcept { return config != nullptr && !diags.has_errors(); }
};

/// Loads one compiled table, or one or more spec files merged in order. Specs are always
/// analysed (router::analyze); tables were analysed when they were compiled.
Loaded load(std::span<const std::string> paths, const Options& opts = {});

/// True when the file at `path` starts with the .gwrt magic (false if unreadable).
bool is_table_file(const std::string& path);

} // namespace gw::load
