// gwctl test: route test cases against a spec or table, with route coverage.
#include "commands.hpp"
#include "gw/check/cases.hpp"
#include "gw/load/load.hpp"
#include "output.hpp"

namespace gwctl {

using namespace gw;

int run_test(const Global& g, const TestOptions& o) {
  std::vector<std::string> inputs{o.input};
  inputs.insert(inputs.end(), o.with.begin(), o.with.end());
  auto loaded = load::load(inputs);
  const Style est = style_for(stderr, g.color);
  if (!loaded.ok()) {
    print_diagnostics(stderr, loaded.diags, &loaded.sources, est);
    return kFailed;
  }
  spec::SourceSet sources;
  Diagnostics diags;
  const auto cases = spec::read_cases_file(o.cases, sources, diags);
  if (diags.has_errors()) {
    print_diagnostics(stderr, diags, &sources, est);
    for (const auto& d : diags)
      if (d.code == "input.unreadable") return kIoError;
    return kFailed;
  }
  const auto rep = check::run_cases(*loaded.routes, cases);
  const bool coverage_ok = rep.coverage() + 1e-9 >= o.fail_under;
  const bool ok = rep.failed == 0 && coverage_ok;

  if (o.json) {
    auto results = nlohmann::json::array();
    for (const auto& r : rep.results) {
      if (o.only_failures && r.passed()) continue;
      results.push_back({{"name", r.name},
                         {"where", r.where},
                         {"request", r.request},
                         {"actual", r.actual},
                         {"passed", r.passed()},
                         {"failures", r.failures}});
    }
    print_json({{"passed", rep.passed},
                {"failed", rep.failed},
                {"coverage",
                 {{"percent", rep.coverage()},
                  {"routes", rep.routes_total},
                  {"uncovered", rep.uncovered}}},
                {"ok", ok},
                {"results", results}});
    return ok ? kOk : kFailed;
  }

  const Style st = style_for(stdout, g.color);
  for (const auto& r : rep.results) {
    if (o.only_failures && r.passed()) continue;
    if (r.passed()) {
      std::printf("%sPASS%s  %s  %s%s -> %s%s\n", st.green(), st.reset(), r.name.c_str(), st.dim(),
                  r.request.c_str(), r.actual.c_str(), st.reset());
    } else {
      std::printf("%sFAIL%s  %s  (%s)\n", st.red(), st.reset(), r.name.c_str(), r.where.c_str());
      std::printf("      request: %s\n", r.request.c_str());
      for (const auto& f : r.failures)
        std::printf("      %s\n", f.c_str());
    }
  }
  std::printf("\n%zu passed, %zu failed; route coverage %.1f%% (%zu of %zu routes)\n", rep.passed,
              rep.failed, rep.coverage(), rep.routes_total - rep.uncovered.size(),
              rep.routes_total);
  if (!rep.uncovered.empty()) {
    std::string list;
    for (const auto& n : rep.uncovered)
      list += (list.empty() ? "" : ", ") + n;
    std::printf("not covered: %s\n", list.c_str());
  }
  if (!coverage_ok)
    std::printf("%scoverage %.1f%% is below --fail-under %.1f%%%s\n", st.red(), rep.coverage(),
                o.fail_under, st.reset());
  return ok ? kOk : kFailed;
}

} // namespace gwctl
