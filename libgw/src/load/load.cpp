#include "gw/load/load.hpp"

#include <fstream>

#include "gw/core/file.hpp"
#include "gw/model/validate.hpp"
#include "gw/router/analysis.hpp"
#include "gw/spec/toml_reader.hpp"
#include "gw/table/codec.hpp"

namespace gw::load {

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
    spec::Document doc;
    for (const auto& p : paths)
      spec::read_toml_file(p, out.sources, doc, out.diags);
    // Analyse what is valid even when something else is not: every problem at once.
    out.config = std::make_shared<const model::Config>(model::validate(doc, out.diags));
  }
  if (out.config) {
    auto rt = router::RouteTable::build(out.config);
    if (!rt) {
      out.diags.error("table.bad_route", SourceLoc{paths[0], 0, 0}, rt.error().message);
      out.config.reset();
    } else {
      out.routes.emplace(std::move(*rt));
      if (opts.analyze && !out.table) router::analyze(*out.routes, out.diags);
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
