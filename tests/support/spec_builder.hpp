// Test support: TOML text -> diagnostics, Config and RouteTable, through the real pipeline.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "gw/core/diagnostics.hpp"
#include "gw/model/validate.hpp"
#include "gw/router/analysis.hpp"
#include "gw/router/route_table.hpp"
#include "gw/spec/toml_reader.hpp"

namespace gwtest {

/// The first diagnostic with `code`, or null.
inline const gw::Diagnostic* find_diagnostic(const gw::Diagnostics& diags,
                                             const std::string& code) {
  for (const auto& d : diags)
    if (d.code == code) return &d;
  return nullptr;
}

/// Every diagnostic on its own line, hints included, for failure messages.
inline std::string dump_diagnostics(const gw::Diagnostics& diags) {
  std::string s;
  for (const auto& d : diags)
    s += d.to_string() + (d.hint.empty() ? "" : " [hint: " + d.hint + "]") + "\n";
  return s;
}

struct Built {
  gw::Diagnostics diags;
  gw::spec::SourceSet sources;
  std::shared_ptr<const gw::model::Config> config;
  std::optional<gw::router::RouteTable> table;

  bool has(const std::string& code) const {
    for (const auto& d : diags)
      if (d.code == code) return true;
    return false;
  }
  const gw::Diagnostic* find(const std::string& code) const { return find_diagnostic(diags, code); }
  std::string dump() const { return dump_diagnostics(diags); }
};

/// Reads, validates, builds and (optionally) analyses a spec given as text.
inline Built build_spec(const std::string& toml, bool analyze = true,
                        const std::string& name = "test.toml") {
  Built b;
  gw::spec::Document doc;
  gw::spec::read_toml(name, toml, b.sources, doc, b.diags);
  auto cfg = std::make_shared<const gw::model::Config>(gw::model::validate(doc, b.diags));
  auto rt = gw::router::RouteTable::build(cfg);
  if (rt && analyze) gw::router::analyze(*rt, b.diags);
  if (!rt || b.diags.has_errors()) return b;
  b.config = std::move(cfg);
  b.table.emplace(std::move(*rt));
  return b;
}

/// A spec prelude with one upstream named "u".
inline const char* kPrelude = R"(version = 1
[upstreams.u]
endpoints = ["127.0.0.1:9000"]
)";

using Headers = gw::router::ListHeaders;

/// The prelude followed by one [[routes]] table per entry, each with upstream "u".
inline std::string spec_of(const std::vector<std::string>& routes) {
  std::string s = kPrelude;
  for (const auto& r : routes)
    s += "[[routes]]\nupstream = \"u\"\n" + r + "\n";
  return s;
}

} // namespace gwtest
