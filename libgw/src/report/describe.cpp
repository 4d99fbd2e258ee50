#include "gw/report/describe.hpp"

#include "gw/router/explain.hpp"

#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/model/precedence.hpp"

namespace gw::report {

using namespace gw;

std::string match_text(const model::Route& r) {
  std::string s = std::string(model::to_string(r.kind)) + " " + r.pattern;
  // Regexes rank among themselves by priority, so it is part of how a regex route matches.
  if (r.kind == model::MatchKind::regex) s += " (priority " + std::to_string(r.priority) + ")";
  return s;
}

namespace {
std::string string_at(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("-");
}
} // namespace

std::string match_cell(const nlohmann::json& route) {
  const auto m = route.find("match");
  if (m == route.end() || !m->is_object()) return "-";
  std::string s = string_at(*m, "kind") + " " + string_at(*m, "pattern");
  if (const auto p = m->find("priority"); p != m->end() && p->is_number_integer())
    s += " (priority " + p->dump() + ")";
  return s;
}

std::string hosts_cell(const nlohmann::json& route) {
  const auto h = route.find("hosts");
  if (h == route.end() || !h->is_array() || h->empty()) return "*";
  std::string s;
  for (const auto& x : *h)
    if (x.is_string()) s += (s.empty() ? "" : ", ") + x.get<std::string>();
  return s;
}

std::string conditions_cell(const nlohmann::json& route) {
  std::string s;
  for (const auto& [key, what] : {std::pair{"headers", "header "}, std::pair{"query", "query "}}) {
    const auto list = route.find(key);
    if (list == route.end() || !list->is_array()) continue;
    for (const auto& m : *list) {
      if (!m.is_object()) continue;
      if (!s.empty()) s += "; ";
      s += what;
      if (m.value("invert", false)) s += "!";
      s += string_at(m, "name");
      s += " " + string_at(m, "op");
      if (m.contains("value")) s += " " + text::quote(string_at(m, "value"));
    }
  }
  return s.empty() ? "-" : s;
}

namespace {
nlohmann::json matchers_json(const std::vector<model::Matcher>& ms) {
  auto a = nlohmann::json::array();
  for (const auto& m : ms) {
    nlohmann::json j = {{"name", m.name}, {"op", model::to_string(m.op)}};
    if (m.op != model::MatchOp::present) j["value"] = m.value;
    if (m.invert) j["invert"] = true;
    a.push_back(std::move(j));
  }
  return a;
}
} // namespace

nlohmann::json route_json(const model::Config& cfg, const model::Route& r) {
  nlohmann::json j = {
      {"name", r.name},
      {"methods", r.methods.is_all() ? nlohmann::json("*") : nlohmann::json(r.methods.to_string())},
      {"hosts", r.hosts},
      {"match", {{"kind", model::to_string(r.kind)}, {"pattern", r.pattern}}},
      {"specificity", model::describe_specificity(r)},
      {"upstream", cfg.upstreams[r.upstream].name},
      {"timeout", units::format_duration(units::Millis(r.timeout_ms))},
      {"retries", r.retries},
  };
  if (r.kind == model::MatchKind::regex) j["match"]["priority"] = r.priority;
  if (r.per_try_timeout_ms)
    j["per_try_timeout"] = units::format_duration(units::Millis(r.per_try_timeout_ms));
  if (r.max_body) j["max_body"] = units::format_size(r.max_body);
  auto pols = nlohmann::json::array();
  for (auto p : r.policies)
    pols.push_back(cfg.policies[p].name);
  j["policies"] = pols;
  if (!r.headers.empty()) j["headers"] = matchers_json(r.headers);
  if (!r.query.empty()) j["query"] = matchers_json(r.query);
  if (!r.rewrite.empty()) {
    nlohmann::json rw = nlohmann::json::object();
    if (r.rewrite.path) rw["path"] = *r.rewrite.path;
    if (r.rewrite.prefix) rw["prefix"] = *r.rewrite.prefix;
    if (r.rewrite.host) rw["host"] = *r.rewrite.host;
    j["rewrite"] = rw;
  }
  const std::string where = cfg.where(r.src);
  if (!where.empty()) j["source"] = where;
  return j;
}

nlohmann::json upstream_json(const model::Config& cfg, const model::Upstream& u) {
  auto eps = nlohmann::json::array();
  for (const auto& e : u.endpoints)
    eps.push_back({{"address", e.address()}, {"weight", e.weight}});
  nlohmann::json j = {
      {"name", u.name},
      {"balance", model::to_string(u.balance)},
      {"endpoints", eps},
      {"connect_timeout", units::format_duration(units::Millis(u.connect_timeout_ms))}};
  if (u.hash_on != model::HashOn::none)
    j["hash_on"] =
        std::string(model::to_string(u.hash_on)) + (u.hash_key.empty() ? "" : ":" + u.hash_key);
  const std::string where = cfg.where(u.src);
  if (!where.empty()) j["source"] = where;
  return j;
}

nlohmann::json explain_json(const router::RouteTable& table, const router::Request& req,
                            std::string_view method, std::string_view original_host) {
  const auto ex = router::explain(table, req);
  const model::Config& cfg = table.config();
  const bool matched = ex.match.matched();
  const int status =
      matched ? 200 : (ex.match.status == router::MatchStatus::not_found ? 404 : 405);
  nlohmann::json j = {{"method", method},
                      {"host", ex.host},
                      {"path", std::string(req.path)},
                      {"query", std::string(req.query)},
                      {"host_groups", ex.host_groups},
                      {"status", status}};
  if (matched) {
    const auto& r = cfg.routes[ex.match.route];
    j["route"] = route_json(cfg, r);
    nlohmann::json params = nlohmann::json::object();
    for (const auto& p : ex.match.params())
      params[std::string(p.name)] = std::string(p.value);
    j["params"] = params;
    j["forward"] = {{"path", router::rewritten_path(r, ex.match.params(), req.path)},
                    {"host", r.rewrite.host ? *r.rewrite.host : std::string(original_host)}};
  } else if (status == 405) {
    j["allow"] = ex.match.allow.to_string();
  }
  auto cands = nlohmann::json::array();
  for (const auto& c : ex.candidates)
    cands.push_back({{"route", cfg.routes[c.route].name},
                     {"match", match_text(cfg.routes[c.route])},
                     {"verdict", router::to_string(c.verdict)},
                     {"reason", c.reason}});
  j["candidates"] = cands;
  j["notes"] = ex.notes;
  j["consistent"] = ex.consistent();
  return j;
}

} // namespace gw::report
