#include <catch2/catch.hpp>

#include "support/spec_builder.hpp"

using gwtest::build_spec;
using gwtest::kPrelude;

namespace {
std::string route(const std::string& body) {
  return std::string(kPrelude) + "[[routes]]\nname = \"r\"\nupstream = \"u\"\n" + body + "\n";
}
} // namespace

TEST_CASE("a valid spec yields a config with resolved defaults", "[model]") {
  auto b = build_spec(std::string(kPrelude) + R"(
[defaults]
timeout = "3s"
retries = 2
[[routes]]
name = "a"
template = "/pets/{id}"
upstream = "u"
[[routes]]
name = "b"
path = "/pets"
upstream = "u"
timeout = "1s"
)");
  INFO(b.dump());
  REQUIRE(b.config);
  const auto* a = b.config->find_route("a");
  REQUIRE(a);
  CHECK(a->timeout_ms == 3000);
  CHECK(a->retries == 2);
  CHECK(b.config->find_route("b")->timeout_ms == 1000);
  CHECK(b.config->upstreams[0].connect_timeout_ms == gw::model::kDefaultConnectTimeoutMs);
}

TEST_CASE("every semantic problem has its own diagnostic code", "[model]") {
  struct Case {
    const char* code;
    std::string spec;
  };
  const std::vector<Case> cases = {
      {"value.duration", route("path = \"/\"\ntimeout = \"5\"")},
      {"value.range", route("path = \"/\"\ntimeout = \"0s\"")},
      {"value.range", route("path = \"/\"\nretries = 9")},
      {"value.size", route("path = \"/\"\nmax_body = \"1TB\"")},
      {"value.address", "version = 1\n[upstreams.u]\nendpoints = [\"127.0.0.1\"]\n"},
      {"value.address", "version = 1\n[upstreams.u]\nendpoints = [\"127.0.0.1:0\"]\n"},
      {"value.address", "version = 1\n[upstreams.u]\nendpoints = [\"::1:80\"]\n"},
      {"name.invalid", "version = 1\n[upstreams.\"a b\"]\nendpoints = [\"h:1\"]\n"},
      {"name.duplicate",
       route("path = \"/\"") + "[[routes]]\nname = \"r\"\nupstream = \"u\"\npath = \"/x\"\n"},
      {"upstream.no-endpoints", "version = 1\n[upstreams.u]\nendpoints = []\n"},
      {"upstream.duplicate-endpoint",
       "version = 1\n[upstreams.u]\nendpoints = [\"h:1\", \"h:1\"]\n"},
      {"value.enum", "version = 1\n[upstreams.u]\nendpoints = [\"h:1\"]\nbalance = \"rr\"\n"},
      {"value.hash-on",
       "version = 1\n[upstreams.u]\nendpoints = [\"h:1\"]\nbalance = \"hash\"\nhash_on = \"ip\"\n"},
      {"upstream.hash-on-without-hash",
       "version = 1\n[upstreams.u]\nendpoints = [\"h:1\"]\nhash_on = \"client_ip\"\n"},
      {"upstream.hash-without-key",
       "version = 1\n[upstreams.u]\nendpoints = [\"h:1\"]\nbalance = \"hash\"\n"},
      {"spec.missing-key", std::string(kPrelude) + "[[routes]]\nupstream = \"u\"\npath = \"/\"\n"},
      {"spec.missing-key", std::string(kPrelude) + "[[routes]]\nname = \"r\"\npath = \"/\"\n"},
      {"matcher.present-false",
       route("path = \"/\"\nheaders = [{ name = \"x\", present = false }]")},
      {"matcher.operator", route("path = \"/\"\nheaders = [{ name = \"x\" }]")},
      {"matcher.operator",
       route("path = \"/\"\nquery = [{ name = \"x\", exact = \"1\", prefix = \"2\" }]")},
      {"value.regex", route("path = \"/\"\nheaders = [{ name = \"x\", regex = \"(\" }]")},
      {"value.regex", route("regex = \"/a(\"")},
      {"value.header-name", route("path = \"/\"\nheaders = [{ name = \"x y\", present = true }]")},
      {"matcher.duplicate", route("path = \"/\"\nheaders = [{ name = \"x\", present = true }, { "
                                  "name = \"X\", present = true }]")},
      {"value.method", route("path = \"/\"\nmethods = [\"get\"]")},
      {"value.empty", route("path = \"/\"\nmethods = []")},
      {"value.empty", route("path = \"/\"\nhosts = []")},
      {"value.host", route("path = \"/\"\nhosts = [\"api.example.com:8080\"]")},
      {"value.host", route("path = \"/\"\nhosts = [\"a.*.com\"]")},
      {"value.host", route("path = \"/\"\nhosts = [\"*\"]")},
      {"route.match", route("")},
      {"route.match", route("path = \"/a\"\nprefix = \"/b\"")},
      {"value.path", route("path = \"a\"")},
      {"value.path", route("prefix = \"/a/../b\"")},
      {"value.template", route("template = \"/a/{x\"")},
      {"route.priority", route("path = \"/\"\npriority = 5")},
      {"ref.unknown-upstream",
       std::string(kPrelude) + "[[routes]]\nname = \"r\"\nupstream = \"uu\"\npath = \"/\"\n"},
      {"ref.unknown-policy", route("path = \"/\"\npolicies = [\"nope\"]")},
      {"ref.duplicate-policy",
       std::string(kPrelude) + "[policies.p]\nkind = \"cors\"\norigins = [\"*\"]\n" +
           "[[routes]]\nname = \"r\"\nupstream = \"u\"\npath = \"/\"\npolicies = [\"p\", \"p\"]\n"},
      {"ref.unknown-param", route("template = \"/a/{id}\"\nrewrite = { path = \"/b/{idd}\" }")},
      {"route.rewrite-prefix", route("path = \"/a\"\nrewrite = { prefix = \"/b\" }")},
      {"route.rewrite", route("prefix = \"/a\"\nrewrite = { prefix = \"/b\", path = \"/c\" }")},
      {"value.enum", std::string(kPrelude) + "[policies.p]\nkind = \"ratelimit\"\n"},
  };
  for (const auto& c : cases) {
    INFO(c.code << "\n" << c.spec);
    auto b = build_spec(c.spec);
    INFO(b.dump());
    CHECK(b.has(c.code));
    CHECK_FALSE(b.config);
  }
}

TEST_CASE("warnings do not block the config", "[model]") {
  struct Case {
    const char* code;
    std::string spec;
  };
  const std::vector<Case> cases = {
      {"value.duplicate-method", route("path = \"/\"\nmethods = [\"GET\", \"GET\"]")},
      {"value.duplicate-host", route("path = \"/\"\nhosts = [\"a.com\", \"A.com\"]")},
      {"route.braces-in-path", route("path = \"/a/{id}\"")},
      {"route.per-try-timeout", route("path = \"/\"\ntimeout = \"1s\"\nper_try_timeout = \"2s\"")},
  };
  for (const auto& c : cases) {
    INFO(c.code);
    auto b = build_spec(c.spec);
    INFO(b.dump());
    CHECK(b.has(c.code));
    CHECK(b.config);
  }
}

TEST_CASE("all problems are reported at once", "[model]") {
  auto b = build_spec(std::string(kPrelude) + R"(
[[routes]]
name = "a"
upstream = "nope"
path = "/a"
timeout = "fast"
[[routes]]
name = "b"
upstream = "u"
methods = ["FETCH"]
template = "/b/{"
)");
  CHECK(b.diags.error_count() == 4);
}

TEST_CASE("unknown references suggest the closest name", "[model]") {
  auto b = build_spec(std::string(kPrelude) +
                      "[[routes]]\nname = \"r\"\nupstream = \"v\"\npath = \"/\"\n");
  const auto* d = b.find("ref.unknown-upstream");
  REQUIRE(d);
  CHECK(d->hint == "did you mean \"u\"?");
  CHECK(d->line == 6);
}

TEST_CASE("hosts are lowercased and sorted, methods become a set", "[model]") {
  auto b = build_spec(route("path = \"/\"\nhosts = [\"B.example.com.\", "
                            "\"a.example.com\"]\nmethods = [\"POST\", \"GET\"]"));
  REQUIRE(b.config);
  const auto& r = b.config->routes[0];
  CHECK(r.hosts == std::vector<std::string>{"a.example.com", "b.example.com"});
  CHECK(r.methods.to_string() == "GET, POST");
}

TEST_CASE("a template without parameters is stored as an exact path", "[model]") {
  auto b = build_spec(route("template = \"/plain\""));
  REQUIRE(b.config);
  CHECK(b.config->routes[0].kind == gw::model::MatchKind::exact);
}
