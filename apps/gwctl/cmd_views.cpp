// gwctl status / routes / upstreams / stats / rollback / endpoint set: views and small actions
// on a running gwd, over its control socket.
#include <ctime>

#include "commands.hpp"
#include "daemon_client.hpp"
#include "gw/report/describe.hpp"
#include "output.hpp"

namespace gwctl {

using Json = nlohmann::json;

namespace {
std::string str(const Json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return "-";
  return it->is_string() ? it->get<std::string>() : it->dump();
}
std::string num(std::uint64_t v) {
  return std::to_string(v);
}
std::string us(std::uint64_t v) {
  if (v >= 10'000) return std::to_string(v / 1000) + "ms";
  return std::to_string(v) + "us";
}
} // namespace

int run_status(const Global& g, const ViewOptions& o) {
  auto r = call_daemon(g, "show info");
  if (!r) return r.exit_code;
  const Json& i = *r.result;
  if (o.json) {
    print_json(i);
    return kOk;
  }
  const Style st = style_for(stdout, g.color);
  auto row = [&](const char* k, const std::string& v) {
    std::printf("%s%-10s%s %s\n", st.bold(), k, st.reset(), v.c_str());
  };
  row("gwd", "pid " + str(i, "pid") + ", up " + human_seconds(i.value("uptime_s", 0LL)) + ", " +
                 str(i, "workers") + " workers, version " + str(i, "version") +
                 (i.value("stopping", false) ? ", STOPPING" : ""));
  row("listening", join_strings(i["listeners"], ", "));
  row("control", str(i, "control"));
  const Json& t = i["table"];
  row("table", str(i, "table_path") + ", generation " + str(t, "generation") + ", sha256 " +
                   str(t, "sha256").substr(0, 16) + ", " + str(t, "routes") + " routes, " +
                   str(t, "upstreams") + " upstreams");
  if (i.contains("served")) row("served", str(i["served"], "reason"));
  if (!i["previous_generation"].is_null())
    row("previous",
        "generation " + str(i, "previous_generation") + " (gwctl rollback returns to it)");
  const Json& lr = i["last_reload"];
  if (!lr.is_null()) {
    const long long ago = static_cast<long long>(std::time(nullptr)) - lr.value("time_unix", 0LL);
    row("reload", std::string(lr.value("ok", false) ? "ok" : "REJECTED") + ": " +
                      str(lr, "message") + ", " + human_seconds(ago) + " ago");
  }
  row("overrides", str(i, "overrides") + " endpoint override(s) (gwctl upstreams)");
  if (!str(i, "access_log").empty() && str(i, "access_log") != "-")
    row("log", str(i, "access_log"));
  return kOk;
}

int run_routes(const Global& g, const ViewOptions& o) {
  auto r = call_daemon(g, "show routes");
  if (!r) return r.exit_code;
  if (o.json) {
    print_json(*r.result);
    return kOk;
  }
  const Style st = style_for(stdout, g.color);
  std::vector<std::vector<std::string>> rows;
  for (const auto& rt : (*r.result)["routes"]) {
    const std::string pol = join_strings(rt["policies"], ",");
    rows.push_back({str(rt, "precedence"), str(rt, "name"), str(rt, "methods"),
                    gw::report::hosts_cell(rt), gw::report::match_cell(rt),
                    gw::report::conditions_cell(rt), str(rt, "upstream"), str(rt, "timeout"),
                    pol.empty() ? "-" : pol});
  }
  std::printf("%sroutes%s of generation %s (%zu, in precedence order)\n", st.bold(), st.reset(),
              str(*r.result, "generation").c_str(), rows.size());
  print_table(
      stdout,
      {"#", "NAME", "METHODS", "HOSTS", "MATCH", "CONDITIONS", "UPSTREAM", "TIMEOUT", "POLICIES"},
      rows, st);
  return kOk;
}

int run_upstreams(const Global& g, const ViewOptions& o) {
  auto r = call_daemon(g, "show upstreams");
  if (!r) return r.exit_code;
  if (o.json) {
    print_json(*r.result);
    return kOk;
  }
  const Style st = style_for(stdout, g.color);
  std::vector<std::vector<std::string>> rows;
  for (const auto& u : (*r.result)["upstreams"])
    for (const auto& e : u["endpoints"])
      rows.push_back({str(u, "name"), str(u, "balance"), str(e, "address"), str(e, "weight"),
                      str(e, "state"), str(e, "active"), str(e, "idle"), str(e, "requests"),
                      str(e, "failures")});
  print_table(stdout,
              {"UPSTREAM", "BALANCE", "ENDPOINT", "WEIGHT", "STATE", "ACTIVE", "POOLED", "REQUESTS",
               "FAILURES"},
              rows, st, "");
  return kOk;
}

int run_stats(const Global& g, const ViewOptions& o) {
  auto r = call_daemon(g, "show stats");
  if (!r) return r.exit_code;
  if (o.json) {
    print_json(*r.result);
    return kOk;
  }
  const Style st = style_for(stdout, g.color);
  auto counters = [&](const std::string& name, const Json& c) {
    const Json& s = c["status"];
    return std::vector<std::string>{name,
                                    num(c["requests"]),
                                    num(s["2xx"]),
                                    num(s["3xx"]),
                                    num(s["4xx"]),
                                    num(s["5xx"]),
                                    us(c["latency_us"]["p50"]),
                                    us(c["latency_us"]["p99"]),
                                    num(c["bytes_out"])};
  };
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, c] : (*r.result)["routes"].items())
    rows.push_back(counters(name, c));
  rows.push_back(counters("(no route)", (*r.result)["unrouted"]));
  std::printf("%sroutes%s (since start; counters survive reloads)\n", st.bold(), st.reset());
  print_table(stdout, {"ROUTE", "REQUESTS", "2XX", "3XX", "4XX", "5XX", "P50", "P99", "BYTES OUT"},
              rows, st);
  rows.clear();
  for (const auto& [name, c] : (*r.result)["upstreams"].items()) {
    auto row = counters(name, c);
    row.pop_back();
    row.push_back(num(c["retries"]));
    row.push_back(num(c["connect_failures"]));
    row.push_back(num(c["timeouts"]));
    row.push_back(num(c["protocol_errors"]));
    rows.push_back(std::move(row));
  }
  std::printf("\n%supstreams%s (upstream latency)\n", st.bold(), st.reset());
  print_table(stdout,
              {"UPSTREAM", "REQUESTS", "2XX", "3XX", "4XX", "5XX", "P50", "P99", "RETRIES",
               "CONNECT ERR", "TIMEOUTS", "BAD RESP"},
              rows, st);
  std::printf("\n%sconnections%s %s open\n", st.bold(), st.reset(),
              str(*r.result, "connections").c_str());
  // Filter errors, shown only when there were some.
  const std::pair<const char*, const char*> errors[] = {
      {"rate_limit_store_errors", "rate limit checks the store could not answer"},
      {"ext_auth_errors", "authorization calls that failed or timed out"},
      {"lua_errors", "Lua plugin hooks that failed"}};
  for (const auto& [key, what] : errors)
    if (const auto it = r.result->find(key);
        it != r.result->end() && it->is_number_unsigned() && it->get<std::uint64_t>() > 0)
      std::printf("%s%s%s %s (%s)\n", st.bold(), key, st.reset(), it->dump().c_str(), what);
  return kOk;
}

int run_rollback(const Global& g, const ViewOptions& o) {
  auto r = call_daemon(g, "rollback");
  if (!r) return r.exit_code;
  if (o.json) {
    print_json(*r.result);
    return kOk;
  }
  std::printf("rolled back: generation %s -> %s (the table of generation %s, sha256 %s)\n",
              str(*r.result, "previous_generation").c_str(), str(*r.result, "generation").c_str(),
              str(*r.result, "restored_generation").c_str(),
              str(*r.result, "sha256").substr(0, 16).c_str());
  if (r.result->contains("warning"))
    std::fprintf(stderr, "warning: %s\n", str(*r.result, "warning").c_str());
  return kOk;
}

int run_endpoint_set(const Global& g, const EndpointOptions& o) {
  auto r = call_daemon(g, "set endpoint",
                       {{"upstream", o.upstream}, {"address", o.address}, {"state", o.state}});
  if (!r) return r.exit_code;
  if (o.json)
    print_json(*r.result);
  else
    std::printf("%s/%s is now %s (kept across reloads)\n", o.upstream.c_str(), o.address.c_str(),
                o.state.c_str());
  return kOk;
}

} // namespace gwctl
