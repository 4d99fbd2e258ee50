#include "gw/check/cases.hpp"

#include <algorithm>
#include <map>

#include "gw/core/text.hpp"
#include "gw/router/explain.hpp"

namespace gw::check {

CasesReport run_cases(const router::RouteTable& table, const std::vector<spec::CaseSpec>& cases) {
  const model::Config& cfg = table.config();
  CasesReport rep;
  std::vector<bool> hit(cfg.routes.size(), false);

  for (const auto& c : cases) {
    CaseResult res;
    res.name = c.name ? *c.name : "(unnamed)";
    res.where = std::string(c.loc.file) + ":" + std::to_string(c.loc.line);
    const std::string method = c.method ? *c.method : "GET";
    res.request = method + " " + (c.url ? *c.url : "");

    auto fail = [&](std::string why) { res.failures.push_back(std::move(why)); };
    std::vector<std::pair<std::string, std::string>> headers;
    if (c.host) headers.emplace_back("host", *c.host); // a Host header below still wins
    for (const auto& [k, v] : c.headers)
      headers.emplace_back(k, *v);
    router::SampleRequest sample;
    if (auto why = sample.read(method, c.url ? *c.url : "", headers)) {
      fail(sample.rejected() ? "bad request target: " + *why : *why);
    } else {
      const router::Request& req = sample.request();
      const router::Match m = table.match(req);

      if (m.matched()) {
        const model::Route& r = cfg.routes[m.route];
        hit[m.route] = true;
        res.actual = "route " + text::quote(r.name) + " (upstream " +
                     text::quote(cfg.upstreams[r.upstream].name) + ")";
        if (c.status && *c.status != 200)
          fail("expected status " + std::to_string(*c.status) + ", got " + res.actual);
        if (c.route && *c.route != r.name)
          fail("expected route " + text::quote(*c.route) + ", got " + text::quote(r.name));
        if (c.upstream && *c.upstream != cfg.upstreams[r.upstream].name)
          fail("expected upstream " + text::quote(*c.upstream) + ", got " +
               text::quote(cfg.upstreams[r.upstream].name));
        if (c.params.set) {
          std::map<std::string, std::string> got;
          for (const auto& p : m.params())
            got[std::string(p.name)] = std::string(p.value);
          std::map<std::string, std::string> want;
          for (const auto& [k, v] : c.params.value)
            want[k] = *v;
          if (got != want) {
            std::string g, w;
            for (const auto& [k, v] : got)
              g += (g.empty() ? "" : ", ") + k + "=" + text::quote(v);
            for (const auto& [k, v] : want)
              w += (w.empty() ? "" : ", ") + k + "=" + text::quote(v);
            fail("expected params {" + w + "}, got {" + g + "}");
          }
        }
        if (c.path) {
          const std::string fwd = router::rewritten_path(r, m.params(), req.path);
          if (fwd != *c.path)
            fail("expected forwarded path " + text::quote(*c.path) + ", got " + text::quote(fwd));
        }
        if (c.rewritten_host) {
          const std::string fwd = r.rewrite.host ? *r.rewrite.host : sample.host();
          if (fwd != *c.rewritten_host)
            fail("expected forwarded host " + text::quote(*c.rewritten_host) + ", got " +
                 text::quote(fwd));
        }
      } else {
        const int status = m.status == router::MatchStatus::not_found ? 404 : 405;
        res.actual = std::to_string(status);
        if (status == 405) res.actual += " (Allow: " + m.allow.to_string() + ")";
        if (c.route || c.upstream || c.params.set || (c.status && *c.status == 200))
          fail("expected " + (c.route ? "route " + text::quote(*c.route) : std::string("a route")) +
               ", got " + res.actual);
        else if (c.status && *c.status != status)
          fail("expected status " + std::to_string(*c.status) + ", got " + res.actual);
        if (c.allow && status == 405) {
          model::MethodSet want;
          for (const auto& a : c.allow.value)
            if (auto pm = model::parse_method(*a)) want.add(*pm);
          if (!(want == m.allow))
            fail("expected Allow: " + want.to_string() + ", got " + m.allow.to_string());
        }
      }
    }
    (res.passed() ? rep.passed : rep.failed)++;
    rep.results.push_back(std::move(res));
  }
  rep.routes_total = cfg.routes.size();
  for (std::size_t i = 0; i < cfg.routes.size(); ++i)
    if (!hit[i]) rep.uncovered.push_back(cfg.routes[i].name);
  return rep;
}

} // namespace gw::check
