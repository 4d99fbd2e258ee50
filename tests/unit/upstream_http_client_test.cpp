// gw::upstream::HttpClient against a scripted HTTP/1.1 server on 127.0.0.1 (port 0) that runs in
// the test's own io_context: framing, limits, the deadline, and the pool (reuse, a peer closing
// an idle connection, the retry of a stale one). Every run is bounded (run_for); no sleeps.
#include <catch2/catch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "gw/core/text.hpp"
#include "gw/upstream/http_client.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using gw::policy::HttpCall;
using gw::policy::HttpReply;
using gw::upstream::HttpClient;
using gw::upstream::HttpClientOptions;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

/// A request as the server read it.
struct Seen {
  std::string head; // request line and fields, through the empty line
  std::string body;
  int conn = 0; // which connection (1-based, in accept order)
  int nth = 0;  // which request on it (1-based)
};

/// What the server does with a request.
struct Act {
  enum What { answer, answer_then_close, close, hold } what = answer;
  std::string bytes; // for answer and answer_then_close
};

/// A scripted server: one coroutine per connection, all in the test's io_context.
class Server {
public:
  using Script = std::function<Act(const Seen&)>;

  Server(net::io_context& ioc, Script script)
      : ioc_(ioc), acceptor_(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        closed_(ioc), script_(std::move(script)) {
    closed_.expires_at(Clock::time_point::max());
    net::co_spawn(ioc_, accept(), net::detached);
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }
  const std::vector<Seen>& requests() const { return requests_; }

  /// Returns once the server has closed a connection itself (at once if it has).
  net::awaitable<void> closed_one() {
    if (closes_ == 0) co_await closed_.async_wait(kTuple);
  }

private:
  net::awaitable<void> accept() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      net::co_spawn(ioc_, serve(std::move(sock), ++connections_), net::detached);
    }
  }

  static std::size_t content_length(const std::string& head) {
    const std::string lower = gw::text::lower(head);
    const auto at = lower.find("\r\ncontent-length:");
    return at == std::string::npos ? 0 : std::stoul(lower.substr(at + 17));
  }

  net::awaitable<void> serve(tcp::socket sock, int conn) {
    std::string buf;
    char chunk[4096];
    for (int nth = 1;; ++nth) {
      std::size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        auto [ec, n] = co_await sock.async_read_some(net::buffer(chunk), kTuple);
        if (ec) co_return; // the client closed it
        buf.append(chunk, n);
      }
      Seen seen{buf.substr(0, end + 4), {}, conn, nth};
      buf.erase(0, end + 4);
      const std::size_t len = content_length(seen.head);
      while (buf.size() < len) {
        auto [ec, n] = co_await sock.async_read_some(net::buffer(chunk), kTuple);
        if (ec) co_return;
        buf.append(chunk, n);
      }
      seen.body = buf.substr(0, len);
      buf.erase(0, len);
      requests_.push_back(seen);
      Act act = script_(seen);
      if (act.what == Act::hold) {
        held_.push_back(std::move(sock)); // open, silent, until the test ends
        co_return;
      }
      if (act.what != Act::close) {
        auto [ec, n] = co_await net::async_write(sock, net::buffer(act.bytes), kTuple);
        if (ec) co_return;
      }
      if (act.what != Act::answer) {
        boost::system::error_code ignored;
        sock.close(ignored);
        ++closes_;
        closed_.cancel();
        co_return;
      }
    }
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer closed_; // cancelled when the server closes a connection itself
  Script script_;
  int connections_ = 0;
  int closes_ = 0;
  std::vector<Seen> requests_;
  std::vector<tcp::socket> held_;
};

/// Runs `body` (a coroutine) on the io_context until it returns, for 10 s at most; rethrows what
/// it threw (Catch2's REQUIRE throws).
template <class Body>
void run(net::io_context& ioc, Body body) {
  std::exception_ptr failure;
  bool done = false;
  net::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
    ioc.stop();
  });
  ioc.run_for(10s);
  REQUIRE(done);
  if (failure) std::rethrow_exception(failure);
}

HttpCall call_to(std::uint16_t port, std::string target = "/auth") {
  HttpCall c;
  c.host = "127.0.0.1";
  c.port = port;
  c.target = std::move(target);
  c.timeout = 5s;
  return c;
}

const std::string* field(const HttpReply& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return &v;
  return nullptr;
}

Act answer(std::string bytes) {
  return Act{Act::answer, std::move(bytes)};
}

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

} // namespace

TEST_CASE("http client: a Content-Length answer comes back with its status, fields and body",
          "[http_client]") {
  net::io_context ioc;
  Server srv(ioc, [](const Seen&) {
    return answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-User: alice\r\n"
                  "Content-Type: text/plain\r\n\r\nhello");
  });
  HttpClient client(ioc.get_executor());
  HttpReply r;
  HttpCall c = call_to(srv.port(), "/check?tenant=a");
  c.authority = "auth.test";
  c.headers = {{"x-forwarded-uri", "/orders?page=2"},
               {"authorization", "Bearer abc"},
               {"connection", "close"}, // framing fields are the client's own
               {"host", "evil.test"},
               {"content-length", "99"}};
  run(ioc, [&]() -> net::awaitable<void> { r = co_await client.call(c); });
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.status == 200);
  CHECK(r.body == "hello");
  REQUIRE(field(r, "x-user"));
  CHECK(*field(r, "x-user") == "alice");
  CHECK(*field(r, "content-type") == "text/plain");
  CHECK(*field(r, "content-length") == "5");

  REQUIRE(srv.requests().size() == 1);
  const std::string& head = srv.requests()[0].head;
  CHECK(head.starts_with("GET /check?tenant=a HTTP/1.1\r\nHost: auth.test\r\n"));
  CHECK(head.find("x-forwarded-uri: /orders?page=2\r\n") != std::string::npos);
  CHECK(head.find("authorization: Bearer abc\r\n") != std::string::npos);
  CHECK(head.find("evil") == std::string::npos);
  CHECK(gw::text::lower(head).find("connection") == std::string::npos);
  CHECK(gw::text::lower(head).find("content-length") == std::string::npos);
  CHECK(client.idle_connections() == 1); // kept alive for the next call

  SECTION("without an authority the Host is HOST:PORT") {
    ioc.restart();
    run(ioc, [&]() -> net::awaitable<void> { r = co_await client.call(call_to(srv.port())); });
    CHECK(srv.requests().back().head.find("\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) +
                                          "\r\n") != std::string::npos);
  }
}

TEST_CASE("http client: chunked and close-delimited bodies are read whole", "[http_client]") {
  net::io_context ioc;
  Server srv(ioc, [](const Seen& s) {
    if (s.head.starts_with("GET /chunked "))
      return answer("HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Type: application/json\r\n\r\n"
                    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: t\r\n\r\n");
    return Act{Act::answer_then_close, "HTTP/1.1 200 OK\r\nX-Kind: eof\r\n\r\nuntil the end"};
  });
  HttpClient client(ioc.get_executor());
  HttpReply chunked, eof;
  run(ioc, [&]() -> net::awaitable<void> {
    chunked = co_await client.call(call_to(srv.port(), "/chunked"));
    eof = co_await client.call(call_to(srv.port(), "/eof"));
  });
  INFO(chunked.error << " / " << eof.error);
  REQUIRE(chunked.ok);
  CHECK(chunked.status == 403);
  CHECK(chunked.body == "hello world");
  CHECK(*field(chunked, "content-type") == "application/json");
  REQUIRE(eof.ok);
  CHECK(eof.status == 200);
  CHECK(eof.body == "until the end");
  CHECK(srv.connections() == 1);         // the chunked answer kept the connection alive
  CHECK(client.idle_connections() == 0); // a close-delimited answer ends its connection
}

TEST_CASE("http client: interim 1xx answers are skipped, and a HEAD answer has no body",
          "[http_client]") {
  net::io_context ioc;
  Server srv(ioc, [](const Seen& s) {
    if (s.head.starts_with("HEAD ")) return answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    return answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
                  kOk);
  });
  HttpClient client(ioc.get_executor());
  HttpReply interim, head;
  run(ioc, [&]() -> net::awaitable<void> {
    interim = co_await client.call(call_to(srv.port()));
    HttpCall h = call_to(srv.port());
    h.method = "HEAD";
    head = co_await client.call(h);
  });
  REQUIRE(interim.ok);
  CHECK(interim.status == 200);
  CHECK(interim.body == "ok");
  CHECK_FALSE(field(interim, "link"));
  REQUIRE(head.ok);
  CHECK(head.body.empty());
  CHECK(srv.connections() == 1);
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("http client: an answer over max_body or the head limit is an error", "[http_client]") {
  net::io_context ioc;
  const std::string big(100, 'x');
  Server srv(ioc, [&](const Seen& s) {
    if (s.head.starts_with("GET /chunked "))
      return answer("HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + big +
                    "\r\n0\r\n\r\n");
    if (s.head.starts_with("GET /head "))
      return answer("HTTP/1.1 200 OK\r\nX-Big: " + std::string(4096, 'h') +
                    "\r\nContent-Length: 0\r\n\r\n");
    return answer("HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\n" + big);
  });
  HttpClientOptions opts;
  opts.max_header_bytes = 1024;
  HttpClient client(ioc.get_executor(), opts);
  HttpReply length, chunked, head, fits;
  run(ioc, [&]() -> net::awaitable<void> {
    HttpCall c = call_to(srv.port(), "/length");
    c.max_body = 16;
    length = co_await client.call(c);
    c.target = "/chunked";
    chunked = co_await client.call(c);
    c.target = "/head";
    head = co_await client.call(c);
    c.target = "/length";
    c.max_body = 100;
    fits = co_await client.call(c);
  });
  for (const HttpReply* r : {&length, &chunked}) {
    CHECK_FALSE(r->ok);
    CHECK_FALSE(r->timed_out);
    CHECK(r->error == "http 127.0.0.1:" + std::to_string(srv.port()) +
                          ": the answer's body is over max_body (16B)");
  }
  CHECK_FALSE(head.ok);
  CHECK(head.error.ends_with("the answer's head is over 1KiB"));
  REQUIRE(fits.ok);
  CHECK(fits.body == big);
  // A connection left in the middle of an answer is never reused.
  CHECK(srv.connections() == 4);
}

TEST_CASE("http client: a service that never answers times out within the deadline",
          "[http_client]") {
  net::io_context ioc;
  Server srv(ioc, [](const Seen&) { return Act{Act::hold, {}}; });
  HttpClient client(ioc.get_executor());
  HttpReply r;
  Clock::duration took{};
  run(ioc, [&]() -> net::awaitable<void> {
    HttpCall c = call_to(srv.port());
    c.timeout = 200ms;
    const auto start = Clock::now();
    r = co_await client.call(c);
    took = Clock::now() - start;
  });
  CHECK_FALSE(r.ok);
  CHECK(r.timed_out);
  CHECK(r.error == "http 127.0.0.1:" + std::to_string(srv.port()) +
                       ": timed out after 200ms (waiting for the answer)");
  CHECK(took >= 200ms);
  CHECK(took < 2s);
  CHECK(client.idle_connections() == 0);
  CHECK(srv.requests().size() == 1); // timed out calls are not retried
}

TEST_CASE("http client: keep-alive connections are reused", "[http_client]") {
  net::io_context ioc;
  Server srv(ioc, [](const Seen&) { return answer(kOk); });
  HttpClient client(ioc.get_executor());
  HttpReply first, second;
  run(ioc, [&]() -> net::awaitable<void> {
    first = co_await client.call(call_to(srv.port()));
    second = co_await client.call(call_to(srv.port()));
  });
  REQUIRE(first.ok);
  REQUIRE(second.ok);
  CHECK(srv.connections() == 1);
  REQUIRE(srv.requests().size() == 2);
  CHECK(srv.requests()[1].conn == 1);
  CHECK(srv.requests()[1].nth == 2);
  CHECK(client.connections_opened() == 1);
  CHECK(client.idle_connections() == 1);

  SECTION("an answer that closes the connection is not pooled") {
    Server closing(ioc, [](const Seen&) {
      return answer("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    ioc.restart();
    run(ioc,
        [&]() -> net::awaitable<void> { first = co_await client.call(call_to(closing.port())); });
    REQUIRE(first.ok);
    CHECK(client.idle_connections() == 1); // the other server's only
  }
  SECTION("connections idle past idle_timeout are swept") {
    HttpClientOptions opts;
    opts.idle_timeout = 0ms;
    HttpClient eager(ioc.get_executor(), opts);
    ioc.restart();
    run(ioc, [&]() -> net::awaitable<void> { first = co_await eager.call(call_to(srv.port())); });
    REQUIRE(first.ok);
    CHECK(eager.idle_connections() == 1);
    eager.sweep();
    CHECK(eager.idle_connections() == 0);
  }
}

TEST_CASE("http client: a pooled connection the server closed does not fail the next call",
          "[http_client]") {
  net::io_context ioc;
  // Keep-alive answers, but the server then closes the connection, as one does on its idle
  // timeout.
  Server srv(ioc, [](const Seen&) { return Act{Act::answer_then_close, kOk}; });
  HttpClient client(ioc.get_executor());
  HttpReply first, second;
  run(ioc, [&]() -> net::awaitable<void> {
    first = co_await client.call(call_to(srv.port()));
    co_await srv.closed_one();
    second = co_await client.call(call_to(srv.port()));
  });
  REQUIRE(first.ok);
  INFO(second.error);
  REQUIRE(second.ok);
  CHECK(second.body == "ok");
  CHECK(srv.connections() == 2);
}

TEST_CASE("http client: a stale connection is retried once on a new one, for idempotent calls",
          "[http_client]") {
  net::io_context ioc;
  // The first connection answers once, then drops the next request unanswered: the race of a
  // server closing an idle connection just as a call goes out on it.
  Server srv(ioc, [](const Seen& s) {
    if (s.conn == 1 && s.nth == 2) return Act{Act::close, {}};
    return answer(kOk);
  });
  HttpClient client(ioc.get_executor());
  HttpReply first, second;
  SECTION("GET goes again") {
    run(ioc, [&]() -> net::awaitable<void> {
      first = co_await client.call(call_to(srv.port()));
      second = co_await client.call(call_to(srv.port()));
    });
    REQUIRE(first.ok);
    INFO(second.error);
    REQUIRE(second.ok);
    CHECK(srv.connections() == 2);
    CHECK(srv.requests().size() == 3);
  }
  SECTION("POST does not: the service may have acted on it") {
    run(ioc, [&]() -> net::awaitable<void> {
      first = co_await client.call(call_to(srv.port()));
      HttpCall post = call_to(srv.port());
      post.method = "POST";
      post.body = "{}";
      second = co_await client.call(post);
    });
    REQUIRE(first.ok);
    CHECK_FALSE(second.ok);
    CHECK_FALSE(second.timed_out);
    CHECK(second.error.ends_with("the connection closed before an answer"));
    CHECK(srv.connections() == 1);
    REQUIRE(srv.requests().size() == 2);
    CHECK(srv.requests()[1].body == "{}");
    CHECK(srv.requests()[1].head.find("\r\nContent-Length: 2\r\n") != std::string::npos);
  }
}

TEST_CASE("http client: connection failures and calls that cannot be sent are errors",
          "[http_client]") {
  net::io_context ioc;
  HttpClient client(ioc.get_executor());
  HttpReply r;
  SECTION("nothing listens") {
    // A bound socket that does not listen: its port refuses connections and is nobody else's.
    tcp::acceptor bound(ioc);
    bound.open(tcp::v4());
    bound.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const auto port = bound.local_endpoint().port();
    run(ioc, [&]() -> net::awaitable<void> { r = co_await client.call(call_to(port)); });
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.timed_out);
    CHECK(r.error == "http 127.0.0.1:" + std::to_string(port) + ": connecting: Connection refused");
  }
  SECTION("a host name") {
    HttpCall c = call_to(80);
    c.host = "auth.example";
    run(ioc, [&]() -> net::awaitable<void> { r = co_await client.call(c); });
    CHECK(r.error == "http auth.example:80: the host is not an IP address");
  }
  SECTION("a field value that would split the head") {
    HttpCall c = call_to(80);
    c.headers = {{"x-a", "1\r\nx-injected: 2"}};
    run(ioc, [&]() -> net::awaitable<void> { r = co_await client.call(c); });
    CHECK(r.error == "http 127.0.0.1:80: header \"x-a\" is not a valid field");
    CHECK(client.connections_opened() == 0);
  }
  SECTION("a bad target") {
    HttpCall c = call_to(80, "/a b");
    run(ioc, [&]() -> net::awaitable<void> { r = co_await client.call(c); });
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("is not a request target") != std::string::npos);
  }
}

TEST_CASE("http client: calls in flight survive the client", "[http_client]") {
  net::io_context ioc;
  std::unique_ptr<HttpClient> client;
  // The client goes away while its call waits for the answer.
  Server srv(ioc, [&](const Seen&) {
    client.reset();
    return answer(kOk);
  });
  client = std::make_unique<HttpClient>(ioc.get_executor());
  HttpReply r, later;
  run(ioc, [&]() -> net::awaitable<void> {
    r = co_await client->call(call_to(srv.port()));
    // A call made but not yet awaited holds what it needs too.
    client = std::make_unique<HttpClient>(ioc.get_executor());
    const HttpCall c = call_to(srv.port()); // the call must outlive the awaitable
    auto pending = client->call(c);
    later = co_await std::move(pending);
  });
  INFO(r.error << " / " << later.error);
  CHECK(r.ok);
  CHECK(later.ok);
}
