// router::explain: the match decision with its reasons. Evaluates every route against the
// request the slow, obvious way, reports why each route whose path matched was or was not
// chosen, and checks that the trie lookup agrees. For gwctl explain/test, never on the data path.
// Also the requests tools write down (SampleRequest) or make up (ExampleRequest, for analyze()
// and check::diff), and the path helpers they share.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gw/router/route_table.hpp"

namespace gw::router {

enum class Verdict : std::uint8_t { chosen, outranked, host, method, header, query };
std::string_view to_string(Verdict v) noexcept;

struct Candidate {
  std::uint32_t route = 0; // index into Config::routes
  Verdict verdict = Verdict::chosen;
  std::string reason; // human explanation, empty for the chosen route
};

struct Explanation {
  std::string host;                       // as matched (normalised)
  std::vector<std::string> host_groups;   // host keys tried, most specific first
  Match match;                            // what RouteTable::match() decided
  std::optional<std::uint32_t> reference; // what the linear evaluation decided
  std::vector<Candidate> candidates;      // routes whose path matches: chosen first, then by rank
  std::vector<std::string> notes;         // hints, e.g. a route that matches with a trailing "/"
  bool consistent() const noexcept {
    return match.matched() ? reference && *reference == match.route : !reference;
  }
};

Explanation explain(const RouteTable& table, const Request& req);

/// A request written down by a user (gwctl explain, a test case, the control socket's explain):
/// a method, a URL and headers, read as gwd reads them off the wire. A Host header overrides the
/// URL's authority (the last one given wins). It owns what request() views, so it is not copied.
class SampleRequest {
public:
  SampleRequest() = default;
  SampleRequest(const SampleRequest&) = delete;
  SampleRequest& operator=(const SampleRequest&) = delete;

  /// Reads the request; on failure, why: a URL that cannot be read, or, when rejected() is true,
  /// a target gwd refuses with 400 before routing.
  std::optional<std::string> read(std::string_view method, std::string_view url,
                                  const std::vector<std::pair<std::string, std::string>>& headers);
  bool rejected() const noexcept { return rejected_; }
  const Request& request() const noexcept { return req_; }
  const std::string& method() const noexcept { return method_; }
  const std::string& host() const noexcept { return host_; }

private:
  std::string method_, host_, target_, pathbuf_;
  ListHeaders headers_;
  Request req_;
  bool rejected_ = false;
};

/// A request made up to exercise routes (conflict analysis, diffs): a method, a host from a host
/// group's label, a path, and the query parameters and headers the routes' conditions ask for.
/// Owns what request() views; copies are independent. Immutable once built; any thread.
class ExampleRequest {
public:
  /// A request for `path` that satisfies route `r`'s header and query conditions and, when given,
  /// `also`'s; nullopt when they contradict each other. `host_label` is a host group ("*": any
  /// host, "*.example.com": a.example.com). Conditions that cannot be sampled (regex values) are
  /// left out, and complete() is false: the route may refuse the request.
  static std::optional<ExampleRequest> build(const model::Route& r, const std::string& host_label,
                                             std::string path, model::Method method,
                                             const model::Route* also = nullptr);

  /// The request as the router sees it; views this object.
  Request request() const noexcept;
  /// "GET http://a.example.com/pets/1?debug=1 with x-api-version: 2".
  std::string text() const;
  bool complete() const noexcept { return complete_; }
  const std::string& path() const noexcept { return path_; }

private:
  /// Fixed header values, found by lowercase name.
  class Headers final : public HeaderLookup {
  public:
    std::map<std::string, std::string> values;
    bool find(std::string_view name, std::string_view& v) const override;
  };
  bool add_conditions(const model::Route& r);

  model::Method method_ = model::Method::GET;
  std::string host_, path_, query_;
  Headers headers_;
  bool complete_ = true;
};

/// Whether route `r` (path part only) matches canonical `path`; captures template parameters.
bool path_matches(const model::Route& r, std::string_view path,
                  std::vector<std::pair<std::string, std::string>>* params = nullptr);

/// A path that both routes accept, when one can be constructed (literals from either side,
/// samples where both have parameters). Used by conflict analysis and diffs.
std::optional<std::string> common_path(const model::Route& a, const model::Route& b);

/// An example path the route accepts ("/pets/1" for "/pets/{id}"), or "" when none is known.
std::string example_path(const model::Route& r);

} // namespace gw::router
