// check::run_cases: runs route test cases (spec/cases.hpp) against a RouteTable, the way Envoy's
// router_check_tool does, and measures route coverage.
#pragma once

#include <string>
#include <vector>

#include "gw/router/route_table.hpp"
#include "gw/spec/cases.hpp"

namespace gw::check {

struct CaseResult {
  std::string name;
  std::string where;                 // file:line
  std::string request;               // "GET http://host/path"
  std::string actual;                // "route get-pet (upstream pets)" / "404" / "405 (Allow: GET)"
  std::vector<std::string> failures; // empty = passed
  bool passed() const noexcept { return failures.empty(); }
};

struct CasesReport {
  std::vector<CaseResult> results;
  std::size_t passed = 0, failed = 0;
  std::vector<std::string> uncovered; // route names no case reached, in precedence order
  std::size_t routes_total = 0;
  double coverage() const noexcept {
    return routes_total == 0 ? 100.0
                             : 100.0 * static_cast<double>(routes_total - uncovered.size()) /
                                   static_cast<double>(routes_total);
  }
};

CasesReport run_cases(const router::RouteTable& table, const std::vector<spec::CaseSpec>& cases);

} // namespace gw::check
