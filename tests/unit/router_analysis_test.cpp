#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "gw/router/explain.hpp"
#include "support/spec_builder.hpp"

using gwtest::build_spec;
using gwtest::spec_of;

TEST_CASE("two routes accepting exactly the same requests are an error", "[router]") {
  auto b = build_spec(spec_of(
      {"name = \"a\"\ntemplate = \"/pets/{id}\"", "name = \"b\"\ntemplate = \"/pets/{petId}\""}));
  const auto* d = b.find("route.duplicate");
  REQUIRE(d);
  CHECK(d->severity == gw::Severity::error);
  CHECK_THAT(d->message, Catch::Contains("\"a\" and \"b\""));
  CHECK(d->line == 8); // the later route's [[routes]] line
}

TEST_CASE("a route whose requests all go elsewhere is reported as shadowed", "[router]") {
  SECTION("same path, its methods covered by an earlier route") {
    auto b = build_spec(spec_of(
        {"name = \"all\"\npath = \"/x\"", "name = \"get\"\npath = \"/x\"\nmethods = [\"GET\"]"}));
    INFO(b.dump());
    const auto* d = b.find("route.shadowed");
    REQUIRE(d);
    CHECK(d->severity == gw::Severity::warning);
    CHECK_THAT(d->message, Catch::Contains("route \"get\" can never be chosen: route \"all\""));
    CHECK_THAT(d->message, Catch::Contains("e.g. GET /x"));
    CHECK(b.config); // warnings do not block
  }
  SECTION("methods split across two earlier routes") {
    auto b = build_spec(spec_of({"name = \"g\"\npath = \"/x\"\nmethods = [\"GET\"]",
                                 "name = \"p\"\npath = \"/x\"\nmethods = [\"POST\"]",
                                 "name = \"gp\"\npath = \"/x\"\nmethods = [\"GET\", \"POST\"]\n"
                                 "headers = []"}));
    INFO(b.dump());
    CHECK(b.has("route.shadowed"));
  }
  SECTION("a regex under a catch-all prefix") {
    auto b = build_spec(spec_of({"name = \"root\"\nprefix = \"/static\"",
                                 "name = \"re\"\nregex = \"/static/[a-z]+\\\\.css\""}));
    INFO(b.dump());
    const auto* d = b.find("route.shadowed");
    REQUIRE(d);
    CHECK_THAT(d->message, Catch::Contains("\"re\""));
  }
  SECTION("not shadowed when it has a condition the earlier route lacks") {
    auto b = build_spec(
        spec_of({"name = \"plain\"\npath = \"/x\"",
                 "name = \"v2\"\npath = \"/x\"\nheaders = [{ name = \"v\", exact = \"2\" }]"}));
    CHECK_FALSE(b.has("route.shadowed"));
    CHECK_FALSE(b.has("route.duplicate"));
  }
  SECTION("not shadowed when only some of its hosts are covered") {
    auto b = build_spec(spec_of({"name = \"a\"\npath = \"/x\"\nhosts = [\"a.com\"]",
                                 "name = \"ab\"\npath = \"/x\"\nhosts = [\"a.com\", \"b.com\"]"}));
    INFO(b.dump());
    CHECK_FALSE(b.has("route.shadowed"));
  }
}

TEST_CASE("a regex route is shadowed when a more specific route provably takes all it matches",
          "[router]") {
  SECTION("every match starts with a path a {rest...} template completes") {
    auto b = build_spec(spec_of({"name = \"files\"\ntemplate = \"/files/{rest...}\"",
                                 "name = \"pdf\"\nregex = \"/files/docs/[a-z]+\\\\.pdf\""}));
    INFO(b.dump());
    const auto* d = b.find("route.shadowed");
    REQUIRE(d);
    CHECK_THAT(d->message, Catch::Contains("route \"pdf\" can never be chosen: route \"files\""));
    CHECK_THAT(d->message, Catch::Contains("e.g. GET /files/docs/a.pdf"));
  }
  SECTION("a regex that matches one path only, which a template accepts") {
    auto b = build_spec(spec_of({"name = \"get-pet\"\ntemplate = \"/pets/{id}\"",
                                 "name = \"pet-42\"\nregex = \"/pets/42\""}));
    INFO(b.dump());
    const auto* d = b.find("route.shadowed");
    REQUIRE(d);
    CHECK_THAT(d->message, Catch::Contains("route \"pet-42\" can never be chosen"));
    CHECK_THAT(d->message, Catch::Contains("e.g. GET /pets/42"));
    CHECK_FALSE(b.has("route.likely-shadowed"));
  }
  SECTION("not when the lead stops short of the prefix's segment boundary") {
    // "/staticx" is a match the prefix "/static" does not take.
    auto b = build_spec(spec_of(
        {"name = \"static\"\nprefix = \"/static\"", "name = \"re\"\nregex = \"/static.*\""}));
    INFO(b.dump());
    CHECK_FALSE(b.has("route.shadowed"));
    CHECK_FALSE(b.has("route.likely-shadowed"));
  }
}

TEST_CASE("a regex route whose every sample request goes to another route is likely shadowed",
          "[router]") {
  // Templates outrank regexes, and nothing RE2 shows proves that "[0-9]+" never spans segments,
  // so this is reported as likely, not as proven.
  auto b = build_spec(spec_of({"name = \"get-pet\"\ntemplate = \"/pets/{id}\"",
                               "name = \"pet-by-number\"\nregex = \"/pets/[0-9]+\""}));
  INFO(b.dump());
  CHECK_FALSE(b.has("route.shadowed"));
  const auto* d = b.find("route.likely-shadowed");
  REQUIRE(d);
  CHECK(d->severity == gw::Severity::warning);
  CHECK_THAT(d->message, Catch::Contains("regex route \"pet-by-number\" is likely never chosen"));
  CHECK_THAT(d->message, Catch::Contains("goes to route \"get-pet\""));
  CHECK_THAT(d->message, Catch::Contains("e.g. GET /pets/0"));
  CHECK(d->line == 8);
  // The example is what the matcher decides.
  gw::router::SampleRequest s;
  REQUIRE_FALSE(s.read("GET", "/pets/0", {}));
  const auto m = b.table->match(s.request());
  REQUIRE(m.matched());
  CHECK(b.config->routes[m.route].name == "get-pet");
}

TEST_CASE("a regex route some sample request reaches is not reported", "[router]") {
  SECTION("it also matches paths with more segments") {
    auto b = build_spec(spec_of({"name = \"get-pet\"\ntemplate = \"/pets/{id}\"",
                                 "name = \"pet-tree\"\nregex = \"/pets/[0-9]+(/.*)?\""}));
    INFO(b.dump());
    CHECK(b.diags.empty());
  }
  SECTION("the template takes fewer methods") {
    auto b =
        build_spec(spec_of({"name = \"get-pet\"\ntemplate = \"/pets/{id}\"\nmethods = [\"GET\"]",
                            "name = \"pet-by-number\"\nregex = \"/pets/[0-9]+\""}));
    INFO(b.dump());
    CHECK(b.diags.empty());
  }
  SECTION("the template needs a header the regex route does not") {
    auto b = build_spec(spec_of({"name = \"get-pet\"\ntemplate = \"/pets/{id}\"\n"
                                 "headers = [{ name = \"v\", exact = \"2\" }]",
                                 "name = \"pet-by-number\"\nregex = \"/pets/[0-9]+\""}));
    INFO(b.dump());
    CHECK(b.diags.empty());
  }
}

TEST_CASE("different templates of equal precedence that overlap are ambiguous", "[router]") {
  auto b = build_spec(spec_of(
      {"name = \"by-owner\"\ntemplate = \"/a/{x}\"", "name = \"by-kind\"\ntemplate = \"/{y}/b\""}));
  INFO(b.dump());
  const auto* d = b.find("route.ambiguous");
  REQUIRE(d);
  CHECK_THAT(d->message, Catch::Contains("both accept GET /a/b"));
  CHECK_THAT(d->message, Catch::Contains("\"by-owner\" wins only because it is declared first"));
}

TEST_CASE("templates that cannot match the same path are not ambiguous", "[router]") {
  auto b = build_spec(spec_of(
      {"name = \"a\"\ntemplate = \"/a/{x}\"", "name = \"b\"\ntemplate = \"/b/{y}\"",
       "name = \"c\"\ntemplate = \"/c/{x}.json\"", "name = \"d\"\ntemplate = \"/c/{x}.yaml\""}));
  INFO(b.dump());
  CHECK(b.diags.empty());
}

TEST_CASE("contradictory conditions are not ambiguous", "[router]") {
  auto b = build_spec(
      spec_of({"name = \"one\"\npath = \"/x\"\nheaders = [{ name = \"v\", exact = \"1\" }]",
               "name = \"two\"\npath = \"/x\"\nheaders = [{ name = \"v\", exact = \"2\" }]",
               "name = \"t\"\npath = \"/x\"\nheaders = [{ name = \"t\", exact = \"1\" }]"}));
  INFO(b.dump());
  // one/two can never both match; "t" vs "one" can (both headers present).
  REQUIRE(b.has("route.ambiguous"));
  for (const auto& d : b.diags)
    CHECK_THAT(d.message, !Catch::Contains("\"one\" and \"two\""));
}

TEST_CASE("the demo spec has no conflicts", "[router]") {
  std::ifstream in(GW_SOURCE_DIR "/specs/demo.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  // Named as the real file, so its policy files resolve next to it.
  auto b = build_spec(ss.str(), true, GW_SOURCE_DIR "/specs/demo.toml");
  INFO(b.dump());
  CHECK(b.diags.empty());
  CHECK(b.table);
}

TEST_CASE("a written-down request is read as gwd reads it off the wire", "[router]") {
  gw::router::SampleRequest s;
  REQUIRE_FALSE(s.read("POST", "http://api.example.com:8080/a/%7Eb?x=1",
                       {{"X-Version", "2"}, {"Host", "first.example"}, {"host", "shop.example"}}));
  CHECK(s.host() == "shop.example"); // a Host header wins over the URL; the last one given
  CHECK(s.request().path == "/a/~b");
  CHECK(s.request().query == "x=1");
  CHECK(s.request().method == gw::model::Method::POST);
  std::string_view v;
  REQUIRE(s.request().headers->find("x-version", v)); // names lowercased
  CHECK(v == "2");

  auto why = s.read("GET", "/a/%2e%2e/%2e%2e/etc", {});
  REQUIRE(why);
  CHECK(s.rejected()); // gwd answers 400 before routing
  why = s.read("GET", "not a url", {});
  REQUIRE(why);
  CHECK_FALSE(s.rejected());
}
