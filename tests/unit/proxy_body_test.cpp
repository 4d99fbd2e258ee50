// The body relay's pure halves: reading a body out of what a peer sent (Content-Length,
// chunked with trailers, close-delimited), and framing it for the other side.
#include <catch2/catch.hpp>

#include <boost/beast/http/parser.hpp>
#include <string>
#include <vector>

#include "proxy/body.hpp"

using namespace gw::proxy;
namespace beast = boost::beast;

namespace {

template <bool isRequest>
struct Feed {
  http::parser<isRequest, http::buffer_body> p;
  beast::flat_buffer in;
  std::vector<char> scratch = std::vector<char>(7); // small: pieces split across calls

  /// Parses the head of `raw` and leaves the rest in `in`, as the session does.
  explicit Feed(const std::string& raw) {
    const auto end = raw.find("\r\n\r\n") + 4;
    beast::error_code ec;
    p.put(boost::asio::buffer(raw.data(), end), ec);
    REQUIRE(p.is_header_done());
    add(raw.substr(end));
  }
  void add(const std::string& bytes) {
    auto b = in.prepare(bytes.size());
    std::memcpy(b.data(), bytes.data(), bytes.size());
    in.commit(bytes.size());
  }
};

/// Runs a reader over what is buffered; returns the body and the final status.
template <bool isRequest>
typename BodyReader<isRequest>::Status drain(BodyReader<isRequest>& rd, Feed<isRequest>& f,
                                             std::string& body, bool eof = false) {
  for (int guard = 0; guard < 10000; ++guard) {
    auto s = rd.next(f.in, eof);
    if (s.status != BodyReader<isRequest>::Status::data) return s.status;
    body.append(s.data);
  }
  FAIL("the reader did not stop");
  return BodyReader<isRequest>::Status::malformed;
}

} // namespace

TEST_CASE("content-length bodies are passed on in place and counted exactly", "[proxy][body]") {
  Feed<true> f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123");
  BodyReader<true> rd(BodyKind::length, 10, f.p, f.scratch);
  using S = BodyReader<true>::Status;
  std::string body;
  CHECK(drain(rd, f, body) == S::need_input);
  CHECK(body == "0123");
  f.add("456789GET /next"); // the next pipelined request stays in the buffer
  CHECK(drain(rd, f, body) == S::done);
  CHECK(body == "0123456789");
  CHECK(rd.consumed() == 10);
  CHECK(std::string(static_cast<const char*>(f.in.data().data()), f.in.size()) == "GET /next");
}

TEST_CASE("a content-length body that ends early needs input it never gets", "[proxy][body]") {
  Feed<false> f("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012");
  BodyReader<false> rd(BodyKind::length, 10, f.p, f.scratch);
  std::string body;
  CHECK(drain(rd, f, body, true) == BodyReader<false>::Status::need_input);
  CHECK(body == "012");
}

TEST_CASE("chunked bodies are decoded, with their trailers, whatever the pieces", "[proxy][body]") {
  const std::string wire = "5\r\nhello\r\n0b\r\n, chunked w\r\n4\r\norld\r\n0\r\n"
                           "X-Sum: 42\r\nKeep-Alive: 5\r\n\r\n";
  for (std::size_t split : {std::size_t{1}, std::size_t{3}, wire.size()}) {
    DYNAMIC_SECTION("fed " << split << " bytes at a time") {
      Feed<true> f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
      BodyReader<true> rd(BodyKind::chunked, 0, f.p, f.scratch);
      std::string body;
      BodyReader<true>::Status st = BodyReader<true>::Status::need_input;
      for (std::size_t at = 0; at < wire.size() && st == BodyReader<true>::Status::need_input;
           at += split) {
        f.add(wire.substr(at, split));
        st = drain(rd, f, body);
      }
      CHECK(st == BodyReader<true>::Status::done);
      CHECK(body == "hello, chunked world");
      CHECK(rd.consumed() == wire.size());
      std::string trailers;
      rd.append_trailers(trailers);
      CHECK(trailers == "X-Sum: 42\r\n"); // hop-by-hop fields are never passed on
    }
  }
}

TEST_CASE("malformed chunks and bodies past max_body are refused", "[proxy][body]") {
  using S = BodyReader<true>::Status;
  SECTION("a bad chunk size") {
    Feed<true> f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    BodyReader<true> rd(BodyKind::chunked, 0, f.p, f.scratch);
    std::string body;
    CHECK(drain(rd, f, body) == S::malformed);
  }
  SECTION("too large, chunked and counted") {
    Feed<true> f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "a\r\n0123456789\r\n0\r\n\r\n");
    BodyReader<true> rd(BodyKind::chunked, 0, f.p, f.scratch, 8);
    std::string body;
    CHECK(drain(rd, f, body) == S::too_large);
  }
}

TEST_CASE("close-delimited bodies end at the peer's end of stream", "[proxy][body]") {
  Feed<false> f("HTTP/1.1 200 OK\r\n\r\nsome bytes");
  BodyReader<false> rd(BodyKind::until_close, 0, f.p, f.scratch);
  std::string body;
  CHECK(drain(rd, f, body) == BodyReader<false>::Status::need_input);
  CHECK(drain(rd, f, body, true) == BodyReader<false>::Status::done);
  CHECK(body == "some bytes");
}

TEST_CASE("the writer frames pieces as they are or as chunks", "[proxy][body]") {
  auto text = [](const std::array<boost::asio::const_buffer, 3>& b) {
    std::string s;
    for (const auto& x : b)
      s.append(static_cast<const char*>(x.data()), x.size());
    return s;
  };
  BodyWriter plain(false);
  CHECK(text(plain.frame("abc")) == "abc");
  CHECK(plain.finish("X: 1\r\n").empty());
  BodyWriter chunked(true);
  CHECK(text(chunked.frame("hello world, twenty")) == "13\r\nhello world, twenty\r\n");
  CHECK(text(chunked.frame("")).empty()); // a zero-size chunk would end the body
  CHECK(chunked.finish("X-Sum: 42\r\n") == "0\r\nX-Sum: 42\r\n\r\n");
}
