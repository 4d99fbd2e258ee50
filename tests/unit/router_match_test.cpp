#include <catch2/catch.hpp>

#include <random>

#include "gw/router/explain.hpp"
#include "gw/uri/normalize.hpp"
#include "support/spec_builder.hpp"

using gwtest::build_spec;
using gwtest::Headers;
using gwtest::spec_of;
using namespace gw;

namespace {

struct Decision {
  int status = 0;    // 200, 404, 405
  std::string route; // when 200
  std::string allow; // when 405
  std::map<std::string, std::string> params;
};

Decision decide(const gwtest::Built& b, const std::string& method, const std::string& target,
                const std::string& host = "", const Headers& headers = {}) {
  std::string buf;
  auto t = uri::parse_target(target, buf);
  REQUIRE(t);
  router::Request req;
  req.host = host;
  req.method = model::classify_method(method);
  req.path = t->path;
  req.query = t->query;
  req.headers = &headers;
  const auto m = b.table->match(req);
  // The trie and the linear reference evaluation must agree on every request.
  const auto ex = router::explain(*b.table, req);
  CHECK(ex.consistent());
  Decision d;
  if (m.matched()) {
    d.status = 200;
    d.route = b.config->routes[m.route].name;
    for (const auto& p : m.params())
      d.params[std::string(p.name)] = std::string(p.value);
  } else {
    d.status = m.status == router::MatchStatus::not_found ? 404 : 405;
    d.allow = m.allow.to_string();
  }
  return d;
}

} // namespace

TEST_CASE("precedence: exact beats template beats prefix beats regex", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"regex\"\nregex = \"/pets/.*\"",
      "name = \"prefix\"\nprefix = \"/pets\"",
      "name = \"template\"\ntemplate = \"/pets/{id}\"",
      "name = \"exact\"\npath = \"/pets/mine\"",
  }));
  INFO(b.dump());
  REQUIRE(b.table);
  CHECK(decide(b, "GET", "/pets/mine").route == "exact");
  CHECK(decide(b, "GET", "/pets/7").route == "template");
  CHECK(decide(b, "GET", "/pets/7/toys").route == "prefix");
  CHECK(decide(b, "GET", "/pets").route == "prefix");
}

TEST_CASE("precedence matrix between templates: more literal characters, then more segments",
          "[router]") {
  auto b = build_spec(spec_of({
      "name = \"any-any\"\ntemplate = \"/{a}/{b}\"",
      "name = \"users-any\"\ntemplate = \"/users/{id}\"",
      "name = \"any-settings\"\ntemplate = \"/{c}/settings\"",
      "name = \"users-me\"\npath = \"/users/me\"",
      "name = \"files\"\ntemplate = \"/users/{id}/{rest...}\"",
      "name = \"users-id-x\"\ntemplate = \"/users/{id}/x\"",
  }));
  INFO(b.dump());
  REQUIRE(b.table);
  struct Row {
    const char* path;
    const char* route;
  };
  for (const Row& row : {Row{"/users/me", "users-me"}, Row{"/users/7", "users-any"},
                         Row{"/u/settings", "any-settings"}, Row{"/users/settings", "any-settings"},
                         Row{"/a/b", "any-any"}, Row{"/users/7/x", "users-id-x"},
                         Row{"/users/7/y", "files"}, Row{"/users/7/x/y", "files"}}) {
    INFO(row.path);
    CHECK(decide(b, "GET", row.path).route == row.route);
  }
  CHECK(decide(b, "GET", "/a").status == 404);
  CHECK(decide(b, "GET", "/users/7/").status == 404); // rest is non-empty
}

TEST_CASE("longer prefix wins and prefixes respect segment boundaries", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"api\"\nprefix = \"/api\"",
      "name = \"api-v2\"\nprefix = \"/api/v2\"",
      "name = \"root\"\nprefix = \"/\"",
      "name = \"slash\"\nprefix = \"/docs/\"",
  }));
  REQUIRE(b.table);
  CHECK(decide(b, "GET", "/api").route == "api");
  CHECK(decide(b, "GET", "/api/").route == "api");
  CHECK(decide(b, "GET", "/api/x").route == "api");
  CHECK(decide(b, "GET", "/apix").route == "root");
  CHECK(decide(b, "GET", "/api/v2/x").route == "api-v2");
  CHECK(decide(b, "GET", "/api/v22").route == "api");
  CHECK(decide(b, "GET", "/docs").route == "root");
  CHECK(decide(b, "GET", "/docs/").route == "slash");
  CHECK(decide(b, "GET", "/docs/a").route == "slash");
  CHECK(decide(b, "GET", "/").route == "root");
}

TEST_CASE("regex routes run last, by priority", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"low\"\nregex = \"/img/.*\"\npriority = 1",
      "name = \"high\"\nregex = \"/img/[0-9]+\\\\.png\"\npriority = 5",
      "name = \"exact\"\npath = \"/img/1.png\"",
  }));
  INFO(b.dump());
  REQUIRE(b.table);
  CHECK(decide(b, "GET", "/img/1.png").route == "exact");
  CHECK(decide(b, "GET", "/img/2.png").route == "high");
  CHECK(decide(b, "GET", "/img/a.png").route == "low");
  CHECK(decide(b, "GET", "/img2").status == 404); // regexes must match the whole path
}

TEST_CASE("a path that matches with the wrong method gives 405 with Allow", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"list\"\npath = \"/pets\"\nmethods = [\"GET\", \"HEAD\"]",
      "name = \"create\"\npath = \"/pets\"\nmethods = [\"POST\"]",
      "name = \"get\"\ntemplate = \"/pets/{id}\"\nmethods = [\"GET\"]",
  }));
  REQUIRE(b.table);
  auto d = decide(b, "DELETE", "/pets");
  CHECK(d.status == 405);
  CHECK(d.allow == "GET, HEAD, POST");
  CHECK(decide(b, "PUT", "/pets/1").allow == "GET");
  CHECK(decide(b, "GET", "/dogs").status == 404);
  CHECK(decide(b, "BREW", "/pets").status == 405); // extension methods are understood as "other"
}

TEST_CASE("hosts: exact beats the longest wildcard beats any", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"any\"\nprefix = \"/\"",
      "name = \"wild\"\nprefix = \"/\"\nhosts = [\"*.example.com\"]",
      "name = \"wild-deep\"\nprefix = \"/\"\nhosts = [\"*.eu.example.com\"]",
      "name = \"exact\"\nprefix = \"/\"\nhosts = [\"api.example.com\"]",
      "name = \"exact-path\"\npath = \"/only\"\nhosts = [\"shop.example.com\"]",
  }));
  INFO(b.dump());
  REQUIRE(b.table);
  CHECK(decide(b, "GET", "/", "api.example.com").route == "exact");
  CHECK(decide(b, "GET", "/", "API.Example.COM:8443").route == "exact");
  CHECK(decide(b, "GET", "/", "api.example.com.").route == "exact");
  CHECK(decide(b, "GET", "/", "x.example.com").route == "wild");
  CHECK(decide(b, "GET", "/", "x.eu.example.com").route == "wild-deep");
  CHECK(decide(b, "GET", "/", "example.com").route == "any");
  CHECK(decide(b, "GET", "/", "").route == "any");
  // A host-specific group without a matching path falls back to less specific groups.
  CHECK(decide(b, "GET", "/only", "shop.example.com").route == "exact-path");
  CHECK(decide(b, "GET", "/other", "shop.example.com").route == "wild");
}

TEST_CASE("captured parameters come back by name", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"cmp\"\ntemplate = \"/repos/{owner}/{repo}/compare/{base}...{head}\"",
      "name = \"file\"\ntemplate = \"/f/{name}.{ext}\"",
      "name = \"static\"\ntemplate = \"/static/{path...}\"",
  }));
  REQUIRE(b.table);
  auto d = decide(b, "GET", "/repos/gw/core/compare/main...dev");
  CHECK(d.route == "cmp");
  CHECK(d.params == std::map<std::string, std::string>{
                        {"owner", "gw"}, {"repo", "core"}, {"base", "main"}, {"head", "dev"}});
  CHECK(decide(b, "GET", "/f/a.tar.gz").params.at("ext") == "tar.gz");
  CHECK(decide(b, "GET", "/static/css/site.css").params.at("path") == "css/site.css");
  CHECK(decide(b, "GET", "/f/a%2Fb.txt").params.at("name") == "a%2Fb");
}

TEST_CASE("header and query conditions select between routes", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"v1\"\npath = \"/x\"",
      "name = \"v2\"\npath = \"/x\"\nheaders = [{ name = \"X-Version\", exact = \"2\" }]",
      "name = \"beta\"\npath = \"/x\"\nquery = [{ name = \"beta\", present = true }]",
      "name = \"not-curl\"\npath = \"/y\"\nheaders = [{ name = \"user-agent\", prefix = \"curl\", "
      "invert = true }]",
  }));
  INFO(b.dump());
  REQUIRE(b.table);
  CHECK(decide(b, "GET", "/x").route == "v1");
  CHECK(decide(b, "GET", "/x", "", Headers{{"x-version", "2"}}).route == "v2");
  CHECK(decide(b, "GET", "/x", "", Headers{{"x-version", "3"}}).route == "v1");
  CHECK(decide(b, "GET", "/x?beta=1").route == "beta");
  CHECK(decide(b, "GET", "/x?a=1&beta").route == "beta");
  CHECK(decide(b, "GET", "/y", "", Headers{{"user-agent", "curl/8"}}).status == 404);
  CHECK(decide(b, "GET", "/y", "", Headers{{"user-agent", "firefox"}}).route == "not-curl");
  CHECK(decide(b, "GET", "/y").route == "not-curl");
}

TEST_CASE("encoding tricks reach the route that normalisation implies", "[router]") {
  auto b = build_spec(spec_of({
      "name = \"admin\"\nprefix = \"/admin\"",
      "name = \"public\"\nprefix = \"/\"",
  }));
  REQUIRE(b.table);
  CHECK(decide(b, "GET", "/%61dmin/x").route == "admin");
  CHECK(decide(b, "GET", "//admin").route == "admin");
  CHECK(decide(b, "GET", "/public/../admin").route == "admin");
  CHECK(decide(b, "GET", "/admin%2F..%2Fx").route == "public"); // one segment "admin%2F..%2Fx"
}

TEST_CASE("the trie agrees with linear evaluation on random requests", "[router]") {
  // Random tables over a small alphabet make overlaps likely; every decision is cross-checked.
  std::mt19937 rng(12345);
  const std::vector<std::string> lits{"a", "b", "ab", "a.b", "c"};
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> routes;
    for (int i = 0; i < 25; ++i) {
      std::string path;
      const int segs = 1 + static_cast<int>(rng() % 3);
      int params = 0;
      for (int s = 0; s < segs; ++s) {
        const int kind = static_cast<int>(rng() % 4);
        if (kind == 0)
          path += "/{p" + std::to_string(params++) + "}";
        else if (kind == 1) {
          path += "/{p" + std::to_string(params) + "}.{p" + std::to_string(params + 1) + "}";
          params += 2;
        } else
          path += "/" + pick(lits);
      }
      const int k = static_cast<int>(rng() % 4);
      std::string r = "name = \"r" + std::to_string(i) + "\"\n";
      if (k == 0)
        r += "template = \"" + path + "\"";
      else if (k == 1)
        r += "prefix = \"" +
             std::string(path.find('{') == std::string::npos ? path : "/" + pick(lits)) + "\"";
      else if (k == 2)
        r += "template = \"" + path + "/{rest...}\"";
      else
        r += "regex = \"/" + pick(lits) + ".*\"\npriority = " + std::to_string(rng() % 3);
      if (rng() % 3 == 0) r += "\nmethods = [\"GET\"]";
      if (rng() % 4 == 0) r += "\nhosts = [\"" + std::string(rng() % 2 ? "h.x" : "*.x") + "\"]";
      if (rng() % 5 == 0) r += "\nheaders = [{ name = \"v\", exact = \"1\" }]";
      routes.push_back(r);
    }
    std::string spec = gwtest::kPrelude;
    for (const auto& r : routes)
      spec += "[[routes]]\nupstream = \"u\"\n" + r + "\n";
    auto b = build_spec(spec, false);
    if (!b.table) continue; // an invalid random spec (e.g. a duplicate) is not what we test here
    for (int q = 0; q < 200; ++q) {
      std::string path;
      const int segs = static_cast<int>(rng() % 4);
      for (int s = 0; s < segs; ++s)
        path += "/" + pick({"a", "b", "ab", "a.b", "c", "zz", "a.b.c"});
      if (path.empty() || rng() % 5 == 0) path += "/";
      const std::string host = pick({"", "h.x", "y.x", "other"});
      Headers h;
      if (rng() % 2) h.values.emplace_back("v", "1");
      INFO(spec << "\nrequest " << host << path);
      decide(b, rng() % 2 ? "GET" : "POST", path, host, h);
    }
  }
}
