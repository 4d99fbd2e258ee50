// gwctl explain: the routing decision for one request, and why closer candidates lost.
#include "commands.hpp"
#include "describe.hpp"
#include "gw/core/text.hpp"
#include "gw/load/load.hpp"
#include "gw/model/precedence.hpp"
#include "gw/router/explain.hpp"
#include "gw/uri/normalize.hpp"
#include "output.hpp"

namespace gwctl {

using namespace gw;

namespace {} // namespace

int run_explain(const Global& g, const ExplainOptions& o) {
  std::vector<std::string> inputs{o.input};
  inputs.insert(inputs.end(), o.with.begin(), o.with.end());
  auto loaded = load::load(inputs, {.analyze = false});
  const Style est = style_for(stderr, g.color);
  if (!loaded.ok()) {
    print_diagnostics(stderr, loaded.diags, &loaded.sources, est);
    return kFailed;
  }

  router::ListHeaders headers;
  std::string host;
  for (const auto& h : o.headers) {
    const auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::fprintf(stderr, "%serror%s: header %s is not \"Name: value\"\n", est.red(), est.reset(),
                   text::quote(h).c_str());
      return kUsage;
    }
    std::string name = text::lower(h.substr(0, colon));
    std::string value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.erase(0, 1);
    if (name == "host")
      host = value;
    else
      headers.values.emplace_back(std::move(name), std::move(value));
  }
  auto url = uri::split_url(o.url);
  if (!url) {
    std::fprintf(stderr, "%serror%s: %s\n", est.red(), est.reset(), url.error().message.c_str());
    return kUsage;
  }
  if (host.empty()) host = url->host;
  std::string pathbuf;
  auto target = uri::parse_target(url->target, pathbuf);
  if (!target) {
    std::fprintf(stderr, "%serror%s: %s is rejected before routing (400 Bad Request): %s\n",
                 est.red(), est.reset(), text::quote(url->target).c_str(),
                 target.error().message.c_str());
    return kFailed;
  }
  router::Request req;
  req.host = host;
  req.method = model::classify_method(o.method);
  req.path = target->path;
  req.query = target->query;
  req.headers = &headers;

  const auto& table = *loaded.routes;
  const auto ex = router::explain(table, req);
  const model::Config& cfg = table.config();
  const bool matched = ex.match.matched();
  const int status =
      matched ? 200 : (ex.match.status == router::MatchStatus::not_found ? 404 : 405);

  if (o.json) {
    nlohmann::json j = {{"method", o.method},
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
                      {"host", r.rewrite.host ? *r.rewrite.host : host}};
    } else if (status == 405) {
      j["allow"] = ex.match.allow.to_string();
    }
    auto cands = nlohmann::json::array();
    for (const auto& c : ex.candidates)
      cands.push_back({{"route", cfg.routes[c.route].name},
                       {"verdict", router::to_string(c.verdict)},
                       {"reason", c.reason}});
    j["candidates"] = cands;
    j["notes"] = ex.notes;
    print_json(j);
    return matched ? kOk : kFailed;
  }

  const Style st = style_for(stdout, g.color);
  auto row = [&](const char* k, const std::string& v) {
    std::printf("%s%-9s%s %s\n", st.bold(), k, st.reset(), v.c_str());
  };
  row("request", o.method + " " + o.url);
  row("host", (ex.host.empty() ? std::string("(none)") : ex.host) +
                  "  (tried: " + text::join(ex.host_groups, ", ") + ")");
  row("path",
      std::string(req.path) + (req.query.empty() ? "" : "  query " + std::string(req.query)));
  if (matched) {
    const auto& r = cfg.routes[ex.match.route];
    const auto& u = cfg.upstreams[r.upstream];
    std::string eps;
    for (const auto& e : u.endpoints)
      eps += (eps.empty() ? "" : ", ") + e.address();
    row("decision", std::string(st.green()) + "route " + text::quote(r.name) + st.reset() +
                        " -> upstream " + text::quote(u.name) + " (" + eps + ", " +
                        std::string(model::to_string(u.balance)) + ")");
    row("match", match_text(r) + "  [" + model::describe_specificity(r) + "]");
    if (ex.match.param_count) {
      std::string ps;
      for (const auto& p : ex.match.params())
        ps += (ps.empty() ? "" : ", ") + std::string(p.name) + "=" + text::quote(p.value);
      row("params", ps);
    }
    row("forward", router::rewritten_path(r, ex.match.params(), req.path) +
                       (r.rewrite.host ? "  host " + *r.rewrite.host : ""));
    if (!r.policies.empty()) {
      std::string pol;
      for (auto p : r.policies)
        pol += (pol.empty() ? "" : ", ") + cfg.policies[p].name;
      row("policies", pol);
    }
    const std::string where = cfg.where(r.src);
    if (!where.empty()) row("defined", where);
  } else if (status == 405) {
    row("decision", std::string(st.red()) + "405 Method Not Allowed" + st.reset() +
                        "  Allow: " + ex.match.allow.to_string());
  } else {
    row("decision",
        std::string(st.red()) + "404 Not Found" + st.reset() + "  (no route accepts this request)");
  }
  if (!ex.candidates.empty()) {
    std::printf("\n%sroutes whose path matches%s\n", st.bold(), st.reset());
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : ex.candidates) {
      const auto& r = cfg.routes[c.route];
      rows.push_back({c.verdict == router::Verdict::chosen ? "chosen" : "no", r.name, match_text(r),
                      c.verdict == router::Verdict::chosen ? "" : c.reason});
    }
    print_table(stdout, {"", "ROUTE", "MATCH", "WHY NOT"}, rows, st);
  } else {
    std::printf("\nno route's path matches %s\n", text::quote(req.path).c_str());
  }
  for (const auto& n : ex.notes)
    std::printf("%snote:%s %s\n", st.cyan(), st.reset(), n.c_str());
  if (!ex.consistent())
    std::fprintf(stderr,
                 "internal error: the trie and the linear evaluation disagree; please report\n");
  return matched ? kOk : kFailed;
}

} // namespace gwctl
