#include <catch2/catch.hpp>

#include "gw/check/cases.hpp"
#include "gw/check/diff.hpp"
#include "gw/router/explain.hpp"
#include "support/spec_builder.hpp"

using namespace gw;

namespace {

const std::string kSpec = std::string(gwtest::kPrelude) + R"(
[upstreams.w]
endpoints = ["127.0.0.1:9001"]
[[routes]]
name = "get-pet"
methods = ["GET"]
template = "/pets/{id}"
upstream = "u"
rewrite = { path = "/v2/pets/{id}" }
[[routes]]
name = "api"
prefix = "/api"
upstream = "w"
rewrite = { prefix = "/", host = "api.internal" }
)";

check::CasesReport run(const std::string& cases_toml) {
  static auto b = gwtest::build_spec(kSpec);
  REQUIRE(b.table);
  spec::SourceSet sources;
  Diagnostics diags;
  auto cases = spec::read_cases("cases.toml", cases_toml, sources, diags);
  INFO([&] {
    std::string s;
    for (const auto& d : diags)
      s += d.to_string() + "\n";
    return s;
  }());
  REQUIRE_FALSE(diags.has_errors());
  return check::run_cases(*b.table, cases);
}

} // namespace

TEST_CASE("passing cases check route, upstream, params and the forwarded request", "[check]") {
  auto rep = run(R"(
[[case]]
name = "pet"
url = "http://x/pets/7"
expect = { route = "get-pet", upstream = "u", params = { id = "7" }, path = "/v2/pets/7" }
[[case]]
name = "api"
method = "POST"
url = "/api/users"
expect = { route = "api", path = "/users", host = "api.internal" }
[[case]]
name = "missing"
url = "/nope"
expect = { status = 404 }
[[case]]
name = "wrong method"
method = "DELETE"
url = "/pets/1"
expect = { status = 405, allow = ["GET"] }
)");
  CHECK(rep.failed == 0);
  CHECK(rep.passed == 4);
  CHECK(rep.coverage() == Approx(100.0));
}

TEST_CASE("failing cases say what was expected and what happened", "[check]") {
  auto rep = run(R"(
[[case]]
name = "wrong route"
url = "/pets/7"
expect = { route = "api", params = { id = "8" } }
[[case]]
name = "expected 404"
url = "/pets/7"
expect = { status = 404 }
)");
  REQUIRE(rep.failed == 2);
  CHECK(rep.results[0].failures.at(0) == "expected route \"api\", got \"get-pet\"");
  CHECK(rep.results[0].failures.at(1) == "expected params {id=\"8\"}, got {id=\"7\"}");
  CHECK(rep.results[1].failures.at(0) ==
        "expected status 404, got route \"get-pet\" (upstream \"u\")");
  CHECK(rep.uncovered == std::vector<std::string>{"api"});
  CHECK(rep.coverage() == Approx(50.0));
}

TEST_CASE("malformed case files are diagnostics", "[check]") {
  spec::SourceSet sources;
  Diagnostics diags;
  spec::read_cases("c.toml", "[[case]]\nname = \"x\"\nurl = \"/\"\nexpect = { rout = \"a\" }\n",
                   sources, diags);
  REQUIRE(diags.error_count() == 1);
  CHECK(diags.items()[0].code == "spec.unknown-key");
  CHECK(diags.items()[0].hint == "did you mean \"route\"?");
}

TEST_CASE("diff reports added, removed and changed routes, upstreams and policies", "[check]") {
  auto a = gwtest::build_spec(std::string(gwtest::kPrelude) + R"(
[policies.p]
kind = "cors"
origins = ["*"]
[[routes]]
name = "keep"
path = "/k"
upstream = "u"
timeout = "5s"
[[routes]]
name = "gone"
path = "/g"
upstream = "u"
)");
  auto b = gwtest::build_spec(R"(version = 1
[upstreams.u]
endpoints = ["127.0.0.1:9000", "127.0.0.1:9009"]
[policies.q]
kind = "cors"
origins = ["*"]
[[routes]]
name = "new"
path = "/n"
upstream = "u"
[[routes]]
name = "keep"
path = "/k"
upstream = "u"
timeout = "10s"
)");
  REQUIRE(a.table);
  REQUIRE(b.table);
  const auto changes = check::diff(*a.table, *b.table);
  auto has = [&](check::Change::Kind k, const std::string& obj, const std::string& name) {
    for (const auto& c : changes)
      if (c.kind == k && c.object == obj && c.name == name) return &c;
    return static_cast<const check::Change*>(nullptr);
  };
  CHECK(has(check::Change::Kind::added, "route", "new"));
  CHECK(has(check::Change::Kind::removed, "route", "gone"));
  const auto* keep = has(check::Change::Kind::changed, "route", "keep");
  REQUIRE(keep);
  CHECK(keep->details == std::vector<std::string>{"timeout: 5s -> 10s"});
  const auto* up = has(check::Change::Kind::changed, "upstream", "u");
  REQUIRE(up);
  CHECK(up->details == std::vector<std::string>{"endpoint added: 127.0.0.1:9009"});
  CHECK(has(check::Change::Kind::added, "policy", "q"));
  CHECK(has(check::Change::Kind::removed, "policy", "p"));
}

TEST_CASE("diff ignores declaration order but reports precedence changes", "[check]") {
  const std::string base = gwtest::kPrelude;
  auto a = gwtest::build_spec(base + "[[routes]]\nname = \"x\"\nprefix = \"/a\"\nupstream = \"u\"\n"
                                     "[[routes]]\nname = \"y\"\npath = \"/b\"\nupstream = \"u\"\n");
  auto same =
      gwtest::build_spec(base + "[[routes]]\nname = \"y\"\npath = \"/b\"\nupstream = \"u\"\n"
                                "[[routes]]\nname = \"x\"\nprefix = \"/a\"\nupstream = \"u\"\n");
  REQUIRE(a.table);
  REQUIRE(same.table);
  CHECK(check::diff(*a.table, *same.table).empty());

  auto p1 = gwtest::build_spec(
      base + "[[routes]]\nname = \"long\"\nprefix = \"/a/b\"\nupstream = \"u\"\n"
             "[[routes]]\nname = \"t\"\ntemplate = \"/a/{x}/c\"\nupstream = \"u\"\n");
  auto p2 = gwtest::build_spec(
      base + "[[routes]]\nname = \"long\"\ntemplate = \"/a/b/{y}\"\nupstream = \"u\"\n"
             "[[routes]]\nname = \"t\"\ntemplate = \"/a/{x}/c\"\nupstream = \"u\"\n");
  REQUIRE(p1.table);
  REQUIRE(p2.table);
  const auto changes = check::diff(*p1.table, *p2.table);
  bool found = false;
  for (const auto& c : changes)
    if (c.kind == check::Change::Kind::precedence) {
      found = true;
      CHECK(c.name == "long");
      CHECK(c.details.at(0) == "now takes precedence over \"t\" (it came after before)");
    }
  CHECK(found);
}

TEST_CASE("diff reports routes of equal precedence whose declaration order flipped", "[check]") {
  auto spec = [](const std::string& first, const std::string& second) {
    return gwtest::build_spec(gwtest::spec_of({first, second}));
  };
  const std::string owner = "name = \"by-owner\"\ntemplate = \"/a/{x}\"";
  const std::string kind = "name = \"by-kind\"\ntemplate = \"/{y}/b\"";
  auto a = spec(owner, kind);
  auto b = spec(kind, owner);
  REQUIRE(a.table);
  REQUIRE(b.table);
  const auto changes = check::diff(*a.table, *b.table);
  REQUIRE(changes.size() == 1);
  const auto& c = changes[0];
  CHECK(c.kind == check::Change::Kind::precedence);
  CHECK(c.name == "by-kind");
  CHECK(c.other == "by-owner");
  CHECK(c.example == "GET /a/b");
  CHECK(c.details == std::vector<std::string>{
                         "now takes precedence over \"by-owner\" (equal precedence: it is declared "
                         "first now)",
                         "e.g. GET /a/b went to \"by-owner\", now goes to \"by-kind\""});
  // The example really switches: the old table routes it to "by-owner", the new to "by-kind".
  router::SampleRequest s;
  REQUIRE_FALSE(s.read("GET", "/a/b", {}));
  CHECK(a.config->routes[a.table->match(s.request()).route].name == "by-owner");
  CHECK(b.config->routes[b.table->match(s.request()).route].name == "by-kind");

  SECTION("the same path told apart by different conditions") {
    const std::string v1 =
        "name = \"v1\"\npath = \"/x\"\nheaders = [{ name = \"v\", exact = \"1\" }]";
    const std::string t1 =
        "name = \"t1\"\npath = \"/x\"\nheaders = [{ name = \"t\", exact = \"1\" }]";
    const auto flips = check::diff(*spec(v1, t1).table, *spec(t1, v1).table);
    REQUIRE(flips.size() == 1);
    CHECK(flips[0].name == "t1");
    CHECK(flips[0].other == "v1");
    CHECK(flips[0].example == "GET /x with t: 1 with v: 1");
  }
  SECTION("not when the two never compete for a request") {
    const std::string x = "name = \"x\"\ntemplate = \"/x/{id}\"";
    const std::string y = "name = \"y\"\ntemplate = \"/y/{id}\"";
    CHECK(check::diff(*spec(x, y).table, *spec(y, x).table).empty());
  }
}
