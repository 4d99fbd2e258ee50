#include <catch2/catch.hpp>

#include <set>

#include "gw/observe/access_log.hpp"
#include "gw/wire/http_rules.hpp"
#include "gw/wire/local_reply.hpp"

using namespace gw::wire;

TEST_CASE("header blocks with line tricks are refused before parsing", "[wire]") {
  CHECK(check_header_block("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == BlockError::none);
  CHECK(check_header_block("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n") == BlockError::obs_fold);
  CHECK(check_header_block("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n") == BlockError::obs_fold);
  CHECK(check_header_block("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n") == BlockError::bare_cr);
  CHECK(check_header_block("GET / HTTP/1.1\nHost: a\r\n\r\n") == BlockError::bare_lf);
  CHECK(check_header_block(std::string_view("GET / HTTP/1.1\r\nX: a\0\r\n\r\n", 25)) ==
        BlockError::nul);
}

TEST_CASE("the end of a header block is found incrementally", "[wire]") {
  const std::string_view full = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
  CHECK(find_header_end(full, 0) == full.size() - 4);
  CHECK(find_header_end(full.substr(0, 20), 0) == 0);
  CHECK(find_header_end(full, 22) == full.size() - 4); // resumes a few bytes back
  CHECK(find_header_end("\r\n\r", 0) == 0);
}

TEST_CASE("only exactly one chunked coding is accepted", "[wire]") {
  CHECK(is_only_chunked("chunked"));
  CHECK(is_only_chunked(" Chunked "));
  CHECK_FALSE(is_only_chunked("gzip, chunked"));
  CHECK_FALSE(is_only_chunked("chunked, chunked"));
  CHECK_FALSE(is_only_chunked("xchunked"));
}

TEST_CASE("Content-Length values are plain decimal numbers", "[wire]") {
  CHECK(parse_content_length("0") == 0u);
  CHECK(parse_content_length(" 42 ") == 42u);
  for (const char* bad : {"", "+1", "-1", "1,1", "0x10", "1 2", "99999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(parse_content_length(bad));
  }
}

TEST_CASE("hop-by-hop fields are recognised case-insensitively", "[wire]") {
  for (const char* h : {"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                        "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate"})
    CHECK(is_hop_by_hop(h));
  for (const char* h : {"Host", "Content-Length", "Authorization", "X-Connection"})
    CHECK_FALSE(is_hop_by_hop(h));
}

TEST_CASE("trusted-proxy networks match IPv4 and IPv6", "[wire]") {
  auto lan = Cidr::parse("10.0.0.0/8");
  REQUIRE(lan);
  CHECK(lan->contains(*parse_ip("10.1.2.3")));
  CHECK_FALSE(lan->contains(*parse_ip("11.0.0.1")));
  auto one = Cidr::parse("192.168.1.7");
  REQUIRE(one);
  CHECK(one->contains(*parse_ip("192.168.1.7")));
  CHECK_FALSE(one->contains(*parse_ip("192.168.1.8")));
  auto v6 = Cidr::parse("fd00::/8");
  REQUIRE(v6);
  CHECK(v6->contains(*parse_ip("fd12::1")));
  CHECK_FALSE(v6->contains(*parse_ip("fe80::1")));
  CHECK_FALSE(v6->contains(*parse_ip("10.0.0.1")));
  CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
  CHECK_FALSE(Cidr::parse("nonsense"));
}

TEST_CASE("forwarding headers trust only trusted peers", "[wire]") {
  Forwarding out;
  ForwardInput in{"10.0.0.5", false,   "http", "api.example.com",
                  "6.6.6.6",  "https", "evil", "for=6.6.6.6"};
  build_forwarding(in, out);
  CHECK(out.x_forwarded_for == "10.0.0.5");
  CHECK(out.x_forwarded_proto == "http");
  CHECK(out.x_forwarded_host == "api.example.com");
  CHECK(out.forwarded == "for=10.0.0.5;proto=http;host=api.example.com");
  in.peer_trusted = true;
  build_forwarding(in, out);
  CHECK(out.x_forwarded_for == "6.6.6.6, 10.0.0.5");
  CHECK(out.x_forwarded_proto == "https");
  CHECK(out.x_forwarded_host == "evil");
  CHECK(out.forwarded == "for=6.6.6.6, for=10.0.0.5;proto=http;host=api.example.com");
  ForwardInput v6{"::1", false, "http", "[::1]:8080", "", "", "", ""};
  build_forwarding(v6, out);
  CHECK(out.forwarded == "for=\"[::1]\";proto=http;host=\"[::1]:8080\"");
}

TEST_CASE("the client address comes from X-Forwarded-For only through trusted proxies", "[wire]") {
  const std::vector<Cidr> trusted{*Cidr::parse("10.0.0.0/8"), *Cidr::parse("127.0.0.1")};
  // An untrusted peer is the client, whatever it claims.
  CHECK(client_address("203.0.113.9", false, "198.51.100.1", trusted) == "203.0.113.9");
  // A trusted peer: walk from the right past trusted hops to the first untrusted address.
  CHECK(client_address("127.0.0.1", true, "198.51.100.1", trusted) == "198.51.100.1");
  CHECK(client_address("127.0.0.1", true, "1.2.3.4, 198.51.100.1, 10.0.0.7", trusted) ==
        "198.51.100.1"); // 1.2.3.4 was written by the client itself: not believed
  CHECK(client_address("127.0.0.1", true, "2001:db8::1", trusted) == "2001:db8::1");
  // Every hop trusted: the leftmost one is the client.
  CHECK(client_address("127.0.0.1", true, "10.1.1.1, 10.0.0.7", trusted) == "10.1.1.1");
  // Garbage stops the walk at the trusted hop that passed it on.
  CHECK(client_address("127.0.0.1", true, "198.51.100.1, not-an-ip", trusted) == "127.0.0.1");
  CHECK(client_address("127.0.0.1", true, "bogus, 10.0.0.7", trusted) == "10.0.0.7");
  CHECK(client_address("127.0.0.1", true, "", trusted) == "127.0.0.1");
}

TEST_CASE("request ids: client ids are kept when safe, generated ids are unique", "[wire]") {
  CHECK(acceptable_request_id("abc-123_x.y:z"));
  CHECK_FALSE(acceptable_request_id(""));
  CHECK_FALSE(acceptable_request_id("has space"));
  CHECK_FALSE(acceptable_request_id(std::string(129, 'a')));
  RequestIdGenerator gen;
  std::set<std::string> seen;
  std::array<char, 32> buf;
  for (int i = 0; i < 10000; ++i) {
    gen.next(buf);
    seen.emplace(buf.data(), buf.size());
  }
  CHECK(seen.size() == 10000);
}

TEST_CASE("local replies map kinds to statuses and render JSON", "[wire]") {
  CHECK(status_of(ErrorKind::no_route) == 404);
  CHECK(status_of(ErrorKind::upstream_timeout) == 504);
  CHECK(status_of(ErrorKind::upstream_connect_failed) == 502);
  CHECK(status_of(ErrorKind::header_too_large) == 431);
  CHECK(reason_phrase(413) == "Content Too Large");
  std::string body;
  render_reply_body(ErrorKind::bad_request, "a \"quote\"\n", "id1", body);
  CHECK(body ==
        "{\"error\":\"bad_request\",\"message\":\"a \\\"quote\\\"\\n\",\"request_id\":\"id1\"}\n");
}

TEST_CASE("access log lines are JSON with secrets redacted", "[observe]") {
  gw::observe::AccessRecord r;
  r.time_us = 1'700'000'000'123'456;
  r.method = "GET";
  r.path = "/a\"b";
  r.query = "x=1&api_key=s3cret&Token=t&y";
  r.status = 200;
  r.request_id = "rid";
  std::string line;
  gw::observe::format_access_record(r, line);
  CHECK(line.starts_with("{\"time\":\"2023-11-14T22:13:20.123456Z\""));
  CHECK(line.find("\"path\":\"/a\\\"b\"") != std::string::npos);
  CHECK(line.find("\"query\":\"x=1&api_key=REDACTED&Token=REDACTED&y\"") != std::string::npos);
  CHECK(line.find("s3cret") == std::string::npos);
  CHECK(line.back() == '\n');
}
