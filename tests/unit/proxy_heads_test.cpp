// The request path's message heads as pure functions: request-head checks, what the gateway
// answers itself, the upstream head, the response plan and head, local replies.
#include <catch2/catch.hpp>

#include <boost/beast/http/parser.hpp>
#include <optional>
#include <string>

#include "proxy/heads.hpp"

using namespace gw;
using namespace gw::proxy;
namespace beast = boost::beast;

namespace {

/// A parsed request head, as the session has it after Beast's parser.
struct Parsed {
  http::request_parser<http::buffer_body> p;
  explicit Parsed(const std::string& raw) {
    p.header_limit(64 * 1024);
    beast::error_code ec;
    p.put(boost::asio::buffer(raw), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(p.is_header_done());
  }
  const RequestMessage& msg() const { return p.get(); }
};

struct ParsedResponse {
  http::response_parser<http::buffer_body> p;
  explicit ParsedResponse(const std::string& raw) {
    beast::error_code ec;
    p.put(boost::asio::buffer(raw), ec);
    if (ec == http::error::need_buffer) ec = {};
    REQUIRE_FALSE(ec);
    REQUIRE(p.is_header_done());
  }
  const ResponseMessage& msg() const { return p.get(); }
};

struct Checked {
  std::unique_ptr<Parsed> parsed; // the head's views point into it
  RequestHead head;
  std::string pathbuf;
  std::optional<HeadRefusal> refusal;
};

std::unique_ptr<Checked> check(const std::string& raw) {
  auto c = std::make_unique<Checked>();
  c->parsed = std::make_unique<Parsed>(raw);
  HeadRules rules;
  rules.max_uri_bytes = 64;
  rules.peer_ip = "192.0.2.1";
  auto r = check_request_head(c->parsed->msg(), rules, c->head, c->pathbuf);
  if (!r) c->refusal = r.error();
  return c;
}

wire::ErrorKind refused_as(const std::string& raw) {
  auto c = check(raw);
  REQUIRE(c->refusal);
  return c->refusal->kind;
}

} // namespace

TEST_CASE("request heads: one way to read the framing, or a refusal", "[proxy][heads]") {
  using K = wire::ErrorKind;
  CHECK(
      refused_as("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n") ==
      K::bad_request);
  CHECK(refused_as("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n") ==
        K::not_implemented);
  CHECK(refused_as("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n") ==
        K::bad_request);
  CHECK(refused_as("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        K::bad_request);
  CHECK(refused_as("GET / HTTP/1.1\r\n\r\n") == K::bad_request); // no Host
  CHECK(refused_as("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == K::bad_request);
  CHECK(refused_as("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == K::bad_request);
  CHECK(refused_as("GET /" + std::string(80, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n") ==
        K::uri_too_long);
  CHECK(refused_as("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n") == K::not_implemented);
  CHECK(refused_as("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == K::bad_request);
  CHECK(refused_as("GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n") == K::bad_request);
}

TEST_CASE("request heads: framing, target and fields as the proxy needs them", "[proxy][heads]") {
  SECTION("chunked") {
    auto c = check("POST /x?y=1 HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQUIRE_FALSE(c->refusal);
    CHECK(c->head.body == BodyKind::chunked);
    CHECK(c->head.path == "/x");
    CHECK(c->head.query == "y=1");
    CHECK(c->head.host == "api.test");
    CHECK(c->head.client == "192.0.2.1");
  }
  SECTION("content length, expect and connection tokens") {
    auto c = check("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                   "Connection: close, x-secret\r\n\r\n");
    REQUIRE_FALSE(c->refusal);
    CHECK(c->head.body == BodyKind::length);
    CHECK(c->head.content_length == 5);
    CHECK(c->head.expect_continue);
    CHECK_FALSE(c->head.expect_other);
    CHECK_FALSE(c->head.keep_alive);
    CHECK(c->head.conn.lists("X-Secret"));
    CHECK(c->head.idempotent());
  }
  SECTION("an unknown expectation is kept for after routing") {
    auto c = check("GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n");
    REQUIRE_FALSE(c->refusal);
    CHECK(c->head.expect_other);
  }
  SECTION("absolute form replaces Host") {
    auto c = check("GET http://other.test/p?q HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE_FALSE(c->refusal);
    CHECK(c->head.host == "other.test");
    CHECK(c->head.path == "/p");
    CHECK(c->head.query == "q");
  }
  SECTION("a well-formed client request id is kept, Max-Forwards read") {
    auto c =
        check("POST / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-123\r\nMax-Forwards: 3\r\n\r\n");
    REQUIRE_FALSE(c->refusal);
    CHECK(c->head.request_id == "abc-123");
    REQUIRE(c->head.max_forwards);
    CHECK(*c->head.max_forwards == 3);
    CHECK_FALSE(c->head.idempotent());
  }
}

TEST_CASE("the gateway answers OPTIONS * and Max-Forwards: 0 itself", "[proxy][heads]") {
  router::Match none;
  auto star = check("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE_FALSE(star->refusal);
  auto a = answer_locally(star->head, none);
  REQUIRE(a);
  CHECK(a->effective_status() == 200);

  auto trace = check("TRACE / HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n");
  auto t = answer_locally(trace->head, none);
  REQUIRE(t);
  CHECK(t->effective_status() == 405);

  auto get = check("GET / HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n");
  CHECK_FALSE(answer_locally(get->head, none)); // other methods are forwarded
}

TEST_CASE("the upstream head: hop-by-hop out, edits applied, forwarding fields ours",
          "[proxy][heads]") {
  Parsed p("GET /v1/pets?api_key=k&x=1 HTTP/1.1\r\nHost: api.test\r\nConnection: x-hop\r\n"
           "X-Hop: 1\r\nTE: trailers\r\nX-Api-Key: secret\r\nX-Keep: yes\r\n"
           "X-Forwarded-For: 10.9.9.9\r\nX-Request-Id: client-id\r\nCookie: a=1; sid=2\r\n\r\n");
  RequestHead head;
  std::string pathbuf;
  HeadRules rules;
  rules.peer_ip = "192.0.2.1";
  REQUIRE(check_request_head(p.msg(), rules, head, pathbuf));
  head.request_id = "gw-id";
  model::Route route;
  route.name = "pets";
  router::Match match;
  policy::Edits edits;
  edits.drop.push_back("x-api-key");
  edits.drop_query.push_back("api_key");
  edits.drop_cookies.push_back("sid");
  edits.set.emplace_back("x-consumer", "acme");
  HeadScratch scratch;
  std::string out;
  build_upstream_head(UpstreamRequest{head, p.msg(), route, match, edits, "192.0.2.1", false},
                      scratch, out);
  INFO(out);
  CHECK(out.starts_with("GET /v1/pets?x=1 HTTP/1.1\r\nhost: api.test\r\n"));
  CHECK(out.find("X-Hop") == std::string::npos);
  CHECK(out.find("TE:") == std::string::npos);
  CHECK(out.find("secret") == std::string::npos);
  CHECK(out.find("X-Keep: yes\r\n") != std::string::npos);
  CHECK(out.find("cookie: a=1\r\n") != std::string::npos);
  CHECK(out.find("x-consumer: acme\r\n") != std::string::npos);
  CHECK(out.find("x-forwarded-for: 192.0.2.1\r\n") != std::string::npos); // untrusted peer
  CHECK(out.find("x-request-id: gw-id\r\n") != std::string::npos);
  CHECK(out.find("client-id") == std::string::npos);
  CHECK(out.find("via: 1.1 gw\r\n") != std::string::npos);
  CHECK(out.ends_with("\r\n\r\n"));

  SECTION("a filter's path replaces the route's") {
    edits.path = "/elsewhere";
    out.clear();
    build_upstream_head(UpstreamRequest{head, p.msg(), route, match, edits, "192.0.2.1", false},
                        scratch, out);
    CHECK(out.starts_with("GET /elsewhere?x=1 HTTP/1.1\r\n"));
  }
}

TEST_CASE("response plans: how the body is read and re-framed", "[proxy][heads]") {
  auto req = check("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  auto req10 = check("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
  auto head_req = check("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
  SECTION("content length") {
    ParsedResponse r("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    auto plan = plan_response(r.msg(), true, req->head, true, false);
    REQUIRE(plan);
    CHECK(plan->body == BodyKind::length);
    CHECK(plan->length == 5);
    CHECK_FALSE(plan->to_chunked);
    CHECK(plan->upstream_reusable);
    SECTION("a filter that changes the body as it streams makes it chunked") {
      auto changed = plan_response(r.msg(), true, req->head, true, true);
      REQUIRE(changed);
      CHECK(changed->to_chunked);
      CHECK_FALSE(changed->length_known);
    }
  }
  SECTION("close-delimited becomes chunked for HTTP/1.1 clients, closes for HTTP/1.0") {
    ParsedResponse r("HTTP/1.1 200 OK\r\n\r\n");
    auto p11 = plan_response(r.msg(), false, req->head, true, false);
    REQUIRE(p11);
    CHECK(p11->body == BodyKind::until_close);
    CHECK(p11->to_chunked);
    CHECK(p11->keep_alive);
    auto p10 = plan_response(r.msg(), false, req10->head, true, false);
    REQUIRE(p10);
    CHECK_FALSE(p10->to_chunked);
    CHECK_FALSE(p10->keep_alive);
  }
  SECTION("no body for HEAD, 204 and 304") {
    ParsedResponse r("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    auto p = plan_response(r.msg(), true, head_req->head, true, false);
    REQUIRE(p);
    CHECK(p->body == BodyKind::none);
  }
  SECTION("bad framing is an error naming it") {
    ParsedResponse te("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
    auto p = plan_response(te.msg(), true, req->head, true, false);
    REQUIRE_FALSE(p);
    CHECK(p.error() == "used a transfer coding other than chunked");
  }
  SECTION("an upstream that says close is not pooled") {
    ParsedResponse r("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    auto p = plan_response(r.msg(), false, req->head, true, false);
    REQUIRE(p);
    CHECK_FALSE(p->upstream_reusable);
  }
}

TEST_CASE("the response head: edits, Via, request id and framing", "[proxy][heads]") {
  auto req = check("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  req->head.request_id = "rid";
  ParsedResponse r("HTTP/1.1 201 Created\r\nContent-Length: 2\r\nServer: up\r\nX-Old: 1\r\n"
                   "Keep-Alive: timeout=5\r\nVia: 1.1 lb\r\n\r\n");
  auto plan = plan_response(r.msg(), true, req->head, true, false);
  REQUIRE(plan);
  policy::Edits edits;
  edits.response_set.emplace_back("server", "gw");
  edits.response_remove.push_back("x-old");
  edits.response_add.emplace_back("vary", "origin");
  std::string out;
  build_response_head(r.msg(), *plan, req->head, edits, out);
  INFO(out);
  CHECK(out.starts_with("HTTP/1.1 201 Created\r\n"));
  CHECK(out.find("Server: up") == std::string::npos);
  CHECK(out.find("server: gw\r\n") != std::string::npos);
  CHECK(out.find("X-Old") == std::string::npos);
  CHECK(out.find("Keep-Alive") == std::string::npos);
  CHECK(out.find("vary: origin\r\n") != std::string::npos);
  CHECK(out.find("via: 1.1 lb, 1.1 gw\r\n") != std::string::npos);
  CHECK(out.find("x-request-id: rid\r\n") != std::string::npos);
  CHECK(out.find("content-length: 2\r\n") != std::string::npos);
}

TEST_CASE("local replies: JSON errors, own bodies, bodiless statuses", "[proxy][heads]") {
  auto req = check("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  req->head.request_id = "rid";
  std::string out;
  policy::LocalReply lr;
  lr.kind = wire::ErrorKind::unauthorized;
  lr.message = "authentication required";
  lr.headers.emplace_back("www-authenticate", "Basic realm=\"gw\"");
  render_local_reply(lr, req->head, true, out);
  CHECK(out.starts_with("HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"));
  CHECK(out.find("www-authenticate: Basic realm=\"gw\"\r\n") != std::string::npos);
  CHECK(out.ends_with("{\"error\":\"unauthorized\",\"message\":\"authentication "
                      "required\",\"request_id\":\"rid\"}\n"));

  out.clear();
  policy::LocalReply own;
  own.status = 418;
  own.body = "short and stout";
  own.content_type = "text/plain";
  render_local_reply(own, req->head, false, out);
  CHECK(out.starts_with("HTTP/1.1 418 "));
  CHECK(out.find("content-type: text/plain\r\ncontent-length: 15\r\n") != std::string::npos);
  CHECK(out.find("connection: close\r\n") != std::string::npos);
  CHECK(out.ends_with("\r\n\r\nshort and stout"));

  out.clear();
  policy::LocalReply preflight;
  preflight.status = 204;
  preflight.body = "";
  render_local_reply(preflight, req->head, true, out);
  CHECK(out.find("content-length") == std::string::npos);
  CHECK(out.ends_with("\r\n\r\n"));
}
