// gwctl inspect: a table's header, digest, sources, routes in precedence order and upstreams.
#include "commands.hpp"
#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/load/load.hpp"
#include "gw/report/describe.hpp"
#include "gw/table/codec.hpp"
#include "output.hpp"

namespace gwctl {

using namespace gw;
using namespace gw::report;

namespace {

std::string hexnum(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

} // namespace

int run_inspect(const Global& g, const InspectOptions& o) {
  const std::vector<std::string> inputs{o.input};
  auto loaded = load::load(inputs);
  if (!loaded.ok()) {
    print_diagnostics(stderr, loaded.diags, &loaded.sources, style_for(stderr, g.color));
    for (const auto& d : loaded.diags)
      if (d.code == "input.unreadable") return kIoError;
    return kFailed;
  }
  const model::Config& cfg = *loaded.config;
  // A spec is shown as the table it compiles to.
  table::TableInfo info;
  if (loaded.table) {
    info = *loaded.table;
  } else {
    auto bytes = table::encode(cfg);
    info = table::decode(bytes)->info;
  }

  if (o.json) {
    nlohmann::json j;
    auto sections = nlohmann::json::array();
    for (const auto& s : info.sections)
      sections.push_back(
          {{"tag", table::section_name(s.tag)}, {"offset", s.offset}, {"size", s.size}});
    auto sources = nlohmann::json::array();
    for (const auto& s : cfg.sources) {
      sources.push_back({{"name", s.name}, {"sha256", to_hex(s.digest)}});
      if (!s.path.empty()) sources.back()["path"] = s.path;
    }
    j["table"] = {{"input", o.input},
                  {"compiled", loaded.table.has_value()},
                  {"format", std::to_string(info.major) + "." + std::to_string(info.minor)},
                  {"size", info.file_size},
                  {"sha256", to_hex(info.digest)},
                  {"compiler", info.compiler},
                  {"label", info.label},
                  {"timestamp", info.timestamp},
                  {"sections", sections},
                  {"sources", sources}};
    auto routes = nlohmann::json::array();
    for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
      auto r = route_json(cfg, cfg.routes[i]);
      r["precedence"] = i + 1;
      routes.push_back(std::move(r));
    }
    j["routes"] = routes;
    auto ups = nlohmann::json::array();
    for (const auto& u : cfg.upstreams)
      ups.push_back(upstream_json(cfg, u));
    j["upstreams"] = ups;
    auto pols = nlohmann::json::array();
    for (const auto& p : cfg.policies)
      pols.push_back({{"name", p.name},
                      {"kind", p.kind},
                      {"settings", nlohmann::json::parse(p.config, nullptr, false)}});
    j["policies"] = pols;
    print_json(j);
    return kOk;
  }

  const Style st = style_for(stdout, g.color);
  std::printf("%stable%s     %s%s\n", st.bold(), st.reset(), o.input.c_str(),
              loaded.table ? "" : "  (spec, shown as compiled)");
  std::printf("%sformat%s    %u.%u, %s, %zu sections\n", st.bold(), st.reset(), info.major,
              info.minor, units::format_size(info.file_size).c_str(), info.sections.size());
  std::printf("%ssha256%s    %s\n", st.bold(), st.reset(), to_hex(info.digest).c_str());
  std::printf("%scompiler%s  %s%s%s\n", st.bold(), st.reset(), info.compiler.c_str(),
              info.label.empty() ? "" : ", label ", info.label.c_str());
  if (info.timestamp)
    std::printf("%stimestamp%s %llu\n", st.bold(), st.reset(),
                static_cast<unsigned long long>(info.timestamp));
  for (const auto& s : cfg.sources)
    std::printf("%ssource%s    %s  sha256 %s%s\n", st.bold(), st.reset(), s.name.c_str(),
                to_hex(s.digest).substr(0, 16).c_str(),
                s.path.empty() || s.path == s.name ? "" : ("  (read from " + s.path + ")").c_str());
  std::string secs;
  for (const auto& s : info.sections)
    secs += (secs.empty() ? "" : ", ") + table::section_name(s.tag) + " @" + hexnum(s.offset) +
            " " + std::to_string(s.size) + "B";
  std::printf("%ssections%s  %s\n\n", st.bold(), st.reset(), secs.c_str());

  std::printf("%sroutes%s (%zu, in precedence order)\n", st.bold(), st.reset(), cfg.routes.size());
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    const auto& r = cfg.routes[i];
    const auto view = route_json(cfg, r);
    const std::string pol = join_strings(view["policies"], ",");
    rows.push_back({std::to_string(i + 1), r.name, r.methods.to_string(), hosts_cell(view),
                    match_cell(view), conditions_cell(view), cfg.upstreams[r.upstream].name,
                    units::format_duration(units::Millis(r.timeout_ms)), pol.empty() ? "-" : pol,
                    cfg.where(r.src)});
  }
  print_table(stdout,
              {"#", "NAME", "METHODS", "HOSTS", "MATCH", "CONDITIONS", "UPSTREAM", "TIMEOUT",
               "POLICIES", "SOURCE"},
              rows, st);

  std::printf("\n%supstreams%s (%zu)\n", st.bold(), st.reset(), cfg.upstreams.size());
  rows.clear();
  for (const auto& u : cfg.upstreams) {
    std::string eps;
    for (const auto& e : u.endpoints)
      eps += (eps.empty() ? "" : ", ") + e.address() +
             (e.weight != 1 ? "*" + std::to_string(e.weight) : "");
    std::string bal(model::to_string(u.balance));
    if (u.hash_on != model::HashOn::none)
      bal += " on " + std::string(model::to_string(u.hash_on)) +
             (u.hash_key.empty() ? "" : ":" + u.hash_key);
    rows.push_back({u.name, bal, eps});
  }
  print_table(stdout, {"NAME", "BALANCE", "ENDPOINTS"}, rows, st);
  if (!cfg.policies.empty()) {
    std::printf("\n%spolicies%s (%zu)\n", st.bold(), st.reset(), cfg.policies.size());
    rows.clear();
    for (const auto& p : cfg.policies)
      rows.push_back({p.name, p.kind, p.config});
    print_table(stdout, {"NAME", "KIND", "SETTINGS"}, rows, st);
  }
  return kOk;
}

} // namespace gwctl
