#include <catch2/catch.hpp>

#include "gw/uri/normalize.hpp"

using gw::uri::parse_target;

namespace {
std::string canon(std::string_view target) {
  std::string buf;
  auto t = parse_target(target, buf);
  return t ? std::string(t->path) : "ERR:" + t.error().code.message();
}
} // namespace

TEST_CASE("unreserved percent-escapes are decoded, others uppercased", "[uri]") {
  CHECK(canon("/%7Euser/%61%62c") == "/~user/abc");
  CHECK(canon("/a%2fb") == "/a%2Fb"); // an encoded slash is never a separator
  CHECK(canon("/a%5cb") == "/a%5Cb"); // nor is an encoded backslash
  CHECK(canon("/caf%c3%a9") == "/caf%C3%A9");
}

TEST_CASE("dot segments are removed, also when encoded", "[uri]") {
  CHECK(canon("/a/./b") == "/a/b");
  CHECK(canon("/a/b/../c") == "/a/c");
  CHECK(canon("/a/%2e%2E/c") == "/c");
  CHECK(canon("/a/.%2e/c") == "/c");
  CHECK(canon("/a/b/.") == "/a/b/");
  CHECK(canon("/a/b/..") == "/a/");
  CHECK(canon("/.") == "/");
  CHECK(canon("/admin/..%2F") == "/admin/..%2F"); // "..%2F" is one segment, not a dot segment
}

TEST_CASE("climbing above the root is an error", "[uri]") {
  CHECK(canon("/..") == "ERR:above_root");
  CHECK(canon("/a/../..") == "ERR:above_root");
  CHECK(canon("/%2e%2e/etc/passwd") == "ERR:above_root");
}

TEST_CASE("repeated slashes collapse and a trailing slash is kept", "[uri]") {
  CHECK(canon("//a///b") == "/a/b");
  CHECK(canon("/a/") == "/a/");
  CHECK(canon("/a//") == "/a/");
  CHECK(canon("/") == "/");
}

TEST_CASE("malformed targets are rejected", "[uri]") {
  CHECK(canon("a/b") == "ERR:not_origin_form");
  CHECK(canon("") == "ERR:not_origin_form");
  CHECK(canon("/a%zz") == "ERR:bad_percent_encoding");
  CHECK(canon("/a%2") == "ERR:bad_percent_encoding");
  CHECK(canon("/a b") == "ERR:invalid_character");
  CHECK(canon("/a\\b") == "ERR:invalid_character");
  CHECK(canon("/a#frag") == "ERR:invalid_character");
  CHECK(canon(std::string_view("/a\0b", 4)) == "ERR:invalid_character");
}

TEST_CASE("the query is split off untouched", "[uri]") {
  std::string buf;
  auto t = parse_target("/a/../b?x=%2F&y=1", buf);
  REQUIRE(t);
  CHECK(t->path == "/b");
  CHECK(t->query == "x=%2F&y=1");
}

TEST_CASE("query parameters are decoded for matchers", "[uri]") {
  std::vector<std::pair<std::string, std::string>> got;
  gw::uri::for_each_query_param("a=1&b=x%20y&c=d+e&flag",
                                [&](std::string_view k, std::string_view v) {
                                  got.emplace_back(k, v);
                                  return true;
                                });
  REQUIRE(got.size() == 4);
  CHECK(got[1] == std::pair<std::string, std::string>{"b", "x y"});
  CHECK(got[2].second == "d e");
  CHECK(got[3] == std::pair<std::string, std::string>{"flag", ""});
}

TEST_CASE("query parameters are read from a view, never past its end", "[uri]") {
  // A view into a request head, as the proxy passes it: more bytes follow, and no NUL.
  const std::string head = "GET /x?api_key=secret&v=1 HTTP/1.1\r\nX: a&b=c\r\n";
  const std::string_view query = std::string_view(head).substr(7, 18);
  REQUIRE(query == "api_key=secret&v=1");
  std::vector<std::pair<std::string, std::string>> got;
  gw::uri::for_each_query_param(query, [&](std::string_view k, std::string_view v) {
    got.emplace_back(k, v);
    return true;
  });
  REQUIRE(got.size() == 2);
  CHECK(got[0] == std::pair<std::string, std::string>{"api_key", "secret"});
  CHECK(got[1] == std::pair<std::string, std::string>{"v", "1"});
}

TEST_CASE("query components decode as the matchers see them", "[uri]") {
  std::string buf = "left over";
  auto decode = [&](std::string_view s) {
    gw::uri::decode_query_component(s, buf);
    return buf;
  };
  CHECK(decode("api%5Fkey") == "api_key");
  CHECK(decode("a+b%20c") == "a b c");
  CHECK(decode("100%") == "100%");
  CHECK(decode("%zz%4") == "%zz%4");
  CHECK(decode("") == "");
}

TEST_CASE("raw query pairs come with decoded names, and components encode back", "[uri]") {
  std::string buf;
  std::vector<std::pair<std::string, std::string>> got;
  gw::uri::for_each_raw_param(
      "api%5Fkey=s&&v=1+2&flag", buf,
      [&](std::string_view pair, std::string_view name) { got.emplace_back(pair, name); });
  using P = std::pair<std::string, std::string>;
  CHECK(got ==
        std::vector<P>{{"api%5Fkey=s", "api_key"}, {"", ""}, {"v=1+2", "v"}, {"flag", "flag"}});
  std::string out;
  gw::uri::append_query_component(out, "a b/ü~-._Z9");
  CHECK(out == "a%20b%2F%C3%BC~-._Z9");
}

TEST_CASE("spec paths are canonicalised the way requests are", "[uri]") {
  CHECK(*gw::uri::canonical_spec_path("/caf\xc3\xa9") == "/caf%C3%A9");
  CHECK(*gw::uri::canonical_spec_path("/%7euser") == "/~user");
  CHECK(gw::uri::canonical_spec_path("/a/../b").error().code == gw::uri::errc::dot_segment);
  CHECK(gw::uri::canonical_spec_path("/a//b").error().code == gw::uri::errc::empty_segment);
  CHECK_FALSE(gw::uri::canonical_spec_path("/a?b"));
  CHECK_FALSE(gw::uri::canonical_spec_path("a"));
}

TEST_CASE("URLs split into host and origin-form target", "[uri]") {
  auto u = gw::uri::split_url("http://api.example.com:8080/pets/1?x=1");
  REQUIRE(u);
  CHECK(u->host == "api.example.com");
  CHECK(u->target == "/pets/1?x=1");
  CHECK(gw::uri::split_url("https://h")->target == "/");
  CHECK(gw::uri::split_url("/only/path")->host.empty());
}
