// Route test cases for `gwctl test`: requests in, expected decisions out.
//
//   [[case]]
//   name = "fetch a pet"
//   method = "GET"                                  # default GET
//   url = "http://api.example.com/pets/42?full=1"   # or "/pets/42" with host = "..."
//   headers = { "X-Version" = "2" }
//   expect = { route = "get-pet", upstream = "pets", params = { id = "42" } }
//   # or expect = { status = 404 } / { status = 405, allow = ["GET", "HEAD"] }
//   # and path = "/v2/pets/42" / host = "..." for the forwarded (rewritten) request
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gw/core/diagnostics.hpp"
#include "gw/spec/document.hpp"

namespace gw::spec {

struct CaseSpec {
  SourceLoc loc;
  Field<std::string> name;
  Field<std::string> method;
  Field<std::string> url;
  Field<std::string> host;
  std::vector<std::pair<std::string, Field<std::string>>> headers;
  // expectations
  SourceLoc expect_loc;
  Field<std::string> route, upstream;
  Field<std::int64_t> status;
  Field<StringList> allow;
  Field<std::vector<std::pair<std::string, Field<std::string>>>> params;
  Field<std::string> path, rewritten_host;
};

/// Reads a cases file; problems become diagnostics with locations.
std::vector<CaseSpec> read_cases_file(const std::string& path, SourceSet& sources,
                                      Diagnostics& diags);
std::vector<CaseSpec> read_cases(std::string name, std::string text, SourceSet& sources,
                                 Diagnostics& diags);

} // namespace gw::spec
