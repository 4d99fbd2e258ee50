#include <catch2/catch.hpp>

#include "gw/model/path_template.hpp"

using gw::model::PathTemplate;

TEST_CASE("templates parse into segments with literal and parameter parts", "[model]") {
  auto t = PathTemplate::parse("/files/{name}.{ext}");
  REQUIRE(t);
  REQUIRE(t->segments().size() == 2);
  CHECK(t->segments()[0].literal());
  CHECK(t->segments()[1].parts.size() == 3);
  CHECK(t->param_names() == std::vector<std::string>{"name", "ext"});
  CHECK(t->literal_chars() == 6); // "files" + "."
  CHECK(t->shape() == "/files/{}.{}");
  CHECK(t->text() == "/files/{name}.{ext}");
}

TEST_CASE("a rest parameter must be the whole last segment", "[model]") {
  auto t = PathTemplate::parse("/static/{path...}");
  REQUIRE(t);
  CHECK(t->has_rest());
  CHECK(t->rest_name() == "path");
  CHECK_FALSE(PathTemplate::parse("/static/{path...}/x"));
  CHECK_FALSE(PathTemplate::parse("/static/a{path...}"));
}

TEST_CASE("malformed templates are rejected with a reason", "[model]") {
  for (const char* bad : {"pets/{id}", "/pets/{id", "/pets/id}", "/pets/{}", "/pets/{a}{b}",
                          "/a/{x}/b/{x}", "/a//{x}", "/a/../{x}", "/a/{x y}", "/a/{{x}}"}) {
    INFO(bad);
    auto t = PathTemplate::parse(bad);
    REQUIRE_FALSE(t);
    CHECK_FALSE(t.error().message.empty());
  }
}

TEST_CASE("segment expressions match lazily and never empty", "[model]") {
  auto t = PathTemplate::parse("/compare/{base}...{head}");
  REQUIRE(t);
  const auto& seg = t->segments()[1];
  std::string_view out[2];
  REQUIRE(seg.match("main...feature", out));
  CHECK(out[0] == "main");
  CHECK(out[1] == "feature");
  REQUIRE(seg.match("v1.0...v2.0", out));
  CHECK(out[0] == "v1.0");
  CHECK(out[1] == "v2.0");
  REQUIRE(seg.match("a...b...c", out));
  CHECK(out[0] == "a");
  CHECK(out[1] == "b...c");
  CHECK_FALSE(seg.match("...b", out));
  CHECK_FALSE(seg.match("a...", out));
  CHECK_FALSE(seg.match("ab", out));

  auto f = PathTemplate::parse("/f/{name}.{ext}");
  REQUIRE(f->segments()[1].match("archive.tar.gz", out));
  CHECK(out[0] == "archive");
  CHECK(out[1] == "tar.gz");
}

TEST_CASE("template literals are canonicalised like request paths", "[model]") {
  auto t = PathTemplate::parse("/caf\xc3\xa9/%7e{id}");
  REQUIRE(t);
  CHECK(t->text() == "/caf%C3%A9/~{id}");
}
