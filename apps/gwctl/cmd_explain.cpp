// gwctl explain: the routing decision for one request, and why closer candidates lost. Offline
// against a spec or table, or --live against the running gwd; both print the same JSON view.
#include "commands.hpp"
#include "daemon_client.hpp"
#include "gw/core/text.hpp"
#include "gw/load/load.hpp"
#include "gw/report/describe.hpp"
#include "gw/router/explain.hpp"
#include "output.hpp"

namespace gwctl {

using namespace gw;
using Json = nlohmann::json;

namespace {

void print_explanation(const Global& g, const std::string& method, const std::string& url,
                       const Json& j) {
  const Style st = style_for(stdout, g.color);
  auto row = [&](const char* k, const std::string& v) {
    std::printf("%s%-9s%s %s\n", st.bold(), k, st.reset(), v.c_str());
  };
  std::vector<std::string> groups;
  for (const auto& h : j["host_groups"])
    groups.push_back(h.get<std::string>());
  row("request", method + " " + url);
  const std::string host = j["host"].get<std::string>();
  row("host", (host.empty() ? std::string("(none)") : host) +
                  "  (tried: " + text::join(groups, ", ") + ")");
  const std::string query = j["query"].get<std::string>();
  row("path", j["path"].get<std::string>() + (query.empty() ? "" : "  query " + query));
  if (j.contains("generation")) row("table", "live, generation " + j["generation"].dump());
  const int status = j["status"].get<int>();
  if (status == 200) {
    const Json& r = j["route"];
    row("decision", std::string(st.green()) + "route " + text::quote(r["name"].get<std::string>()) +
                        st.reset() + " -> upstream " +
                        text::quote(r["upstream"].get<std::string>()));
    row("match", r["match"]["kind"].get<std::string>() + " " +
                     r["match"]["pattern"].get<std::string>() + "  [" +
                     r["specificity"].get<std::string>() + "]");
    std::string ps;
    for (const auto& [k, v] : j["params"].items())
      ps += (ps.empty() ? "" : ", ") + k + "=" + text::quote(v.get<std::string>());
    if (!ps.empty()) row("params", ps);
    const std::string fhost = j["forward"]["host"].get<std::string>();
    row("forward",
        j["forward"]["path"].get<std::string>() +
            (r.contains("rewrite") && r["rewrite"].contains("host") ? "  host " + fhost : ""));
    if (!r["policies"].empty()) row("policies", join_strings(r["policies"], ", "));
    if (r.contains("source")) row("defined", r["source"].get<std::string>());
  } else if (status == 405) {
    row("decision", std::string(st.red()) + "405 Method Not Allowed" + st.reset() +
                        "  Allow: " + j["allow"].get<std::string>());
  } else {
    row("decision",
        std::string(st.red()) + "404 Not Found" + st.reset() + "  (no route accepts this request)");
  }
  if (!j["candidates"].empty()) {
    std::printf("\n%sroutes whose path matches%s\n", st.bold(), st.reset());
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : j["candidates"]) {
      const bool chosen = c["verdict"] == "chosen";
      rows.push_back({chosen ? "chosen" : "no", c["route"].get<std::string>(),
                      c["match"].get<std::string>(), chosen ? "" : c["reason"].get<std::string>()});
    }
    print_table(stdout, {"", "ROUTE", "MATCH", "WHY NOT"}, rows, st);
  } else {
    std::printf("\nno route's path matches %s\n",
                text::quote(j["path"].get<std::string>()).c_str());
  }
  for (const auto& n : j["notes"])
    std::printf("%snote:%s %s\n", st.cyan(), st.reset(), n.get<std::string>().c_str());
  if (!j.value("consistent", true))
    std::fprintf(stderr,
                 "internal error: the trie and the linear evaluation disagree; please report\n");
}

} // namespace

int run_explain(const Global& g, const ExplainOptions& opts) {
  ExplainOptions o = opts;
  const Style est = style_for(stderr, g.color);
  const std::size_t want = o.live ? 2 : 3;
  if (o.positional.size() != want) {
    std::fprintf(stderr, "%serror%s: expected %s\n", est.red(), est.reset(),
                 o.live ? "METHOD URL (with --live)" : "INPUT METHOD URL");
    return kUsage;
  }
  if (!o.live) o.input = o.positional[0];
  o.method = o.positional[want - 2];
  o.url = o.positional[want - 1];

  Json headers = Json::object();
  std::vector<std::pair<std::string, std::string>> header_list;
  for (const auto& h : o.headers) {
    const auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::fprintf(stderr, "%serror%s: header %s is not \"Name: value\"\n", est.red(), est.reset(),
                   text::quote(h).c_str());
      return kUsage;
    }
    std::string value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.erase(0, 1);
    headers[text::lower(h.substr(0, colon))] = value;
    header_list.emplace_back(h.substr(0, colon), value);
  }
  // Read here in both modes, so a bad URL or target gets the same answer live or offline.
  router::SampleRequest sample;
  if (auto why = sample.read(o.method, o.url, header_list)) {
    if (!sample.rejected()) {
      std::fprintf(stderr, "%serror%s: %s\n", est.red(), est.reset(), why->c_str());
      return kUsage;
    }
    std::fprintf(stderr, "%serror%s: %s is rejected before routing (400 Bad Request): %s\n",
                 est.red(), est.reset(), text::quote(o.url).c_str(), why->c_str());
    return kFailed;
  }

  Json j;
  if (o.live) {
    auto r =
        call_daemon(g, "explain", {{"method", o.method}, {"url", o.url}, {"headers", headers}});
    if (!r) return r.exit_code;
    j = *r.result;
  } else {
    std::vector<std::string> inputs{o.input};
    inputs.insert(inputs.end(), o.with.begin(), o.with.end());
    auto loaded = load::load(inputs);
    if (!loaded.ok()) {
      print_diagnostics(stderr, loaded.diags, &loaded.sources, est);
      return kFailed;
    }
    j = report::explain_json(*loaded.routes, sample.request(), o.method, sample.host());
  }
  if (o.json)
    print_json(j);
  else
    print_explanation(g, o.method, o.url, j);
  return j["status"].get<int>() == 200 ? kOk : kFailed;
}

} // namespace gwctl
