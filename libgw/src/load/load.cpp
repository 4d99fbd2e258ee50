#include "gw/load/load.hpp"

#include <filesystem>
#include <fstream>

#include "gw/core/file.hpp"
#include "gw/model/validate.hpp"
#include "gw/router/analysis.hpp"
#include "gw/spec/openapi_reader.hpp"
#include "gw/spec/toml_reader.hpp"
#include "gw/table/codec.hpp"

namespace gw::load {
namespace {

/// Gives the sources the names a table records (model::portable_source_names), so that the same
/// specs compile to the same bytes from any directory and however their paths are spelled
/// (`gwctl reload specs/demo.toml` against a gwd serving "$PWD/specs/demo.toml" is then a no-op).
/// Messages keep naming the paths as given (Source::path).
void name_sources(model::Config& config) {
  std::vector<std::string> absolute;
  absolute.reserve(config.sources.size());
  for (const auto& s : config.sources) {
    std::error_code ec;
    std::filesystem::path p = std::filesystem::absolute(s.path, ec);
    if (!ec) p = std::filesystem::weakly_canonical(p, ec);
    absolute.push_back((ec ? std::filesystem::path(s.path) : p).lexically_normal().string());
  }
  const auto names = model::portable_source_names(absolute);
  for (std::size_t i = 0; i < names.size(); ++i)
    config.sources[i].name = names[i];
}

} // namespace

bool is_table_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[sizeof table::kMagic] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  return in.gcount() == sizeof head && table::has_magic(head);
}

Loaded load(std::span<const std::string> paths, const Options& opts) {
  Loaded out;
  if (paths.empty()) {
    out.diags.error("input.none", SourceLoc{}, "no input files");
    return out;
  }
  std::size_t tables = 0;
  for (const auto& p : paths)
    tables += is_table_file(p) ? 1 : 0;

  if (tables > 0) {
    if (paths.size() != 1) {
      out.diags.error("input.mixed", SourceLoc{paths[0], 0, 0},
                      "a compiled table cannot be merged with other inputs; give it alone");
      return out;
    }
    auto bytes = file::read_all(paths[0], table::kMaxTableBytes);
    if (!bytes) {
      out.diags.error("input.unreadable", SourceLoc{paths[0], 0, 0}, bytes.error().message);
      return out;
    }
    auto decoded = table::decode(
        std::span(reinterpret_cast<const unsigned char*>(bytes->data()), bytes->size()));
    if (!decoded) {
      const auto& e = decoded.error();
      out.diags.error("table." + e.code.message(), SourceLoc{paths[0], 0, 0}, e.message);
      return out;
    }
    out.table = decoded->info;
    out.config = std::make_shared<const model::Config>(std::move(decoded->config));
  } else {
    // TOML specs first, so an OpenAPI import can see (and defer to) the upstreams and policies
    // they define; routes from all inputs are ordered by precedence, not by file.
    spec::Document doc;
    std::vector<std::pair<std::string, std::string>> openapi;
    for (const auto& p : paths) {
      auto text = file::read_all(p, spec::kMaxSpecBytes);
      if (!text) {
        const char* code =
            text.error().code == errc::too_large ? "spec.too-large" : "input.unreadable";
        out.diags.error(code, SourceLoc{p, 0, 0}, text.error().message);
        continue;
      }
      if (spec::looks_like_openapi(*text))
        openapi.emplace_back(p, std::move(*text));
      else
        spec::read_toml(p, std::move(*text), out.sources, doc, out.diags);
    }
    for (auto& [p, text] : openapi) {
      spec::ImportSummary summary;
      spec::read_openapi(p, std::move(text), out.sources, doc, out.diags, opts.openapi, &summary);
      out.imports.push_back(std::move(summary));
    }
    // Analyse what is valid even when something else is not: every problem at once.
    auto config = model::validate(doc, out.diags);
    name_sources(config);
    out.config = std::make_shared<const model::Config>(std::move(config));
    if (opts.document) *opts.document = std::move(doc);
  }
  if (out.config) {
    auto rt = router::RouteTable::build(out.config);
    if (!rt) {
      out.diags.error("table.bad_route", SourceLoc{paths[0], 0, 0}, rt.error().message);
      out.config.reset();
    } else {
      out.routes.emplace(std::move(*rt));
      if (!out.table) router::analyze(*out.routes, out.diags);
    }
  }
  out.diags.sort();
  if (out.diags.has_errors()) {
    out.routes.reset();
    out.config.reset();
  }
  return out;
}

} // namespace gw::load
