#include <catch2/catch.hpp>

#include "gw/spec/toml_reader.hpp"

using namespace gw;

namespace {
struct Read {
  Diagnostics diags;
  spec::SourceSet sources;
  spec::Document doc;
};
Read read(const std::string& text) {
  Read r;
  spec::read_toml("t.toml", text, r.sources, r.doc, r.diags);
  return r;
}
} // namespace

TEST_CASE("the reader keeps the location of every value", "[spec]") {
  auto r = read("version = 1\n[[routes]]\nname = \"a\"\n  path = \"/x\"\n");
  REQUIRE_FALSE(r.diags.has_errors());
  REQUIRE(r.doc.routes.size() == 1);
  CHECK(r.doc.routes[0].path.loc.line == 4);
  CHECK(r.doc.routes[0].path.loc.col == 10);
  CHECK(r.doc.routes[0].loc.line == 2);
}

TEST_CASE("unknown keys are errors with a did-you-mean hint", "[spec]") {
  auto r = read("version = 1\n[[routes]]\nname = \"a\"\nupstraem = \"u\"\n");
  REQUIRE(r.diags.error_count() == 1);
  const auto& d = r.diags.items()[0];
  CHECK(d.code == "spec.unknown-key");
  CHECK(d.line == 4);
  CHECK(d.col == 1);
  CHECK(d.hint == "did you mean \"upstream\"?");
  CHECK(d.pointer == "/routes/0/upstraem");
}

TEST_CASE("wrong types are errors naming the expected type", "[spec]") {
  auto r = read("version = 1\n[[routes]]\nname = 5\nmethods = \"GET\"\nretries = \"2\"\n");
  REQUIRE(r.diags.error_count() == 3);
  CHECK(r.diags.items()[0].message == "route.name must be a string, found an integer");
  CHECK(r.diags.items()[1].message ==
        "route #1.methods must be an array of strings, found a string");
}

TEST_CASE("version is required and must be 1", "[spec]") {
  CHECK(read("").diags.items().at(0).code == "spec.missing-version");
  CHECK(read("version = 2").diags.items().at(0).code == "spec.unsupported-version");
  CHECK(read("version = \"1\"").diags.items().at(0).code == "spec.type");
}

TEST_CASE("TOML syntax errors carry line and column", "[spec]") {
  auto r = read("version = 1\n[[routes]\n");
  REQUIRE(r.diags.error_count() == 1);
  CHECK(r.diags.items()[0].code == "spec.syntax");
  CHECK(r.diags.items()[0].line == 2);
}

TEST_CASE("binary garbage is a syntax error, not a crash", "[spec]") {
  std::string junk;
  for (int i = 0; i < 4096; ++i)
    junk += static_cast<char>((i * 7919) & 0xff);
  auto r = read(junk);
  CHECK(r.diags.has_errors());
}

TEST_CASE("endpoints accept strings and weighted tables", "[spec]") {
  auto r = read(
      "version = 1\n[upstreams.p]\nendpoints = [\"a:1\", { address = \"b:2\", weight = 3 }, 7]\n");
  REQUIRE(r.doc.upstreams.size() == 1);
  CHECK(r.doc.upstreams[0].endpoints.value.size() == 2);
  CHECK(r.doc.upstreams[0].endpoints.value[1].weight.value == 3);
  CHECK(r.diags.error_count() == 1);
}

TEST_CASE("policies keep kind-specific settings as JSON with locations", "[spec]") {
  auto r = read("version = 1\n[policies.rl]\nkind = \"rate_limit\"\nrate = \"10/s\"\nburst = 20\n");
  REQUIRE(r.doc.policies.size() == 1);
  CHECK(r.doc.policies[0].kind.value == "rate_limit");
  CHECK(r.doc.policies[0].config["burst"] == 20);
  CHECK(r.doc.policies[0].locs.at("/burst").line == 5);
}

TEST_CASE("defaults may be split across files but not set twice", "[spec]") {
  Diagnostics diags;
  spec::SourceSet sources;
  spec::Document doc;
  spec::read_toml("a.toml", "version = 1\n[defaults]\ntimeout = \"1s\"\n", sources, doc, diags);
  spec::read_toml("b.toml", "version = 1\n[defaults]\nretries = 2\n", sources, doc, diags);
  CHECK_FALSE(diags.has_errors());
  spec::read_toml("c.toml", "version = 1\n[defaults]\ntimeout = \"2s\"\n", sources, doc, diags);
  REQUIRE(diags.error_count() == 1);
  CHECK(diags.items()[0].code == "spec.duplicate-default");
  CHECK_THAT(diags.items()[0].message, Catch::Contains("a.toml:3"));
}

TEST_CASE("an unreadable or oversized file is a diagnostic", "[spec]") {
  Diagnostics diags;
  spec::SourceSet sources;
  spec::Document doc;
  spec::read_toml_file("/nonexistent/spec.toml", sources, doc, diags);
  REQUIRE(diags.error_count() == 1);
  CHECK(diags.items()[0].code == "input.unreadable");
  CHECK(diags.items()[0].file == "/nonexistent/spec.toml");
}
