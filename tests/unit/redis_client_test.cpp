// gw::redis::Client against a real redis-server (a declared dependency: these tests fail, not
// skip, without it) started on a free port, plus a fake server that accepts and never replies.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <thread>

#include "gw/redis/client.hpp"

extern char** environ;

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using gw::redis::Client;
using TakeResult = gw::Result<Client::Take>;

/// A blocking socket connected to 127.0.0.1:port, or -1.
int connect_local(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) return fd;
  ::close(fd);
  return -1;
}

/// Sends one command to the Redis server on 127.0.0.1:port over a raw socket and returns its
/// reply as the server wrote it (RESP), or "" on failure. For small replies (one read).
std::string raw_command(std::uint16_t port, std::initializer_list<std::string_view> args) {
  const int fd = connect_local(port);
  if (fd < 0) return {};
  std::string req = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args)
    req += "$" + std::to_string(a.size()) + "\r\n" + std::string(a) + "\r\n";
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) reply.assign(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  ::close(fd);
  return ntohs(sa.sin_port);
}

/// redis-server on 127.0.0.1, killed by PID when the guard goes away. redis-server cannot report
/// a port it chose itself, so the guard picks a free one and, should another process take it
/// before redis-server binds it (tests run in parallel), tries again with another.
class RedisServer {
public:
  RedisServer() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (spawn()) return;
    }
    FAIL("redis-server exited at startup five times (ports taken?)");
  }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }

  /// Starts it again on the same port (after stop()).
  void start() {
    if (!spawn()) FAIL("redis-server could not start again on port " << port_);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

private:
  bool spawn() {
    ::signal(SIGPIPE, SIG_IGN); // as gwd does: hiredis writes with write(2)
    const std::string port = std::to_string(port_);
    // A name only this server has: a PING answered by another test's redis-server that holds
    // the port must not pass for ours (nothing is ever saved under it: --save "").
    const std::string tag = "gw-test-" + std::to_string(::getpid()) + "-" + port + ".rdb";
    std::vector<std::string> args{
        "redis-server", "--port", port,        "--save",       "", "--appendonly",
        "no",           "--bind", "127.0.0.1", "--dbfilename", tag};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const int rc = ::posix_spawnp(&pid_, "redis-server", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      FAIL("cannot run redis-server (" << std::strerror(rc)
                                       << "): it is a declared dependency of gwd's distributed "
                                          "rate limits; install redis-server (apt-get install "
                                          "redis-server)");
    }
    // Ready when it answers PING; bounded.
    for (auto limit = Clock::now() + 10s; Clock::now() < limit;) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false; // most likely the port was taken meanwhile
      }
      if (raw_command(port_, {"CONFIG", "GET", "dbfilename"}).find(tag) != std::string::npos)
        return true;
      std::this_thread::sleep_for(10ms);
    }
    stop();
    FAIL("redis-server did not answer PING on port " << port_ << " within 10 s");
    return false;
  }

  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

/// One step of the io_context. run_one_for() stops the context when it runs out of work (e.g. no
/// connection): restart it, so that later work runs.
void step(net::io_context& ioc, std::chrono::milliseconds d) {
  if (ioc.stopped()) ioc.restart();
  ioc.run_one_for(d);
}

/// Runs `aw` on `ioc` until it completes (bounded: a hang fails the test instead of blocking).
template <class T>
T run(net::io_context& ioc, net::awaitable<T> aw, std::chrono::milliseconds limit = 10s) {
  std::optional<T> out;
  net::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out.emplace(std::move(v));
  });
  for (const auto end = Clock::now() + limit; !out && Clock::now() < end;)
    step(ioc, 20ms);
  REQUIRE(out.has_value());
  return std::move(*out);
}

/// Lets the io_context process whatever is ready (e.g. a connection's EOF) for a while.
void pump(net::io_context& ioc, std::chrono::milliseconds d) {
  for (const auto end = Clock::now() + d; Clock::now() < end;)
    step(ioc, 5ms);
}

constexpr std::int64_t kSlow = 10'000'000; // 10 s per token: no refill during a test step

} // namespace

TEST_CASE("redis: a burst is allowed, then refused with retry_after", "[redis]") {
  RedisServer server;
  const auto port = server.port();
  net::io_context ioc;
  Client c(ioc.get_executor(), "127.0.0.1", port, 1000ms);
  CHECK_FALSE(c.connected());
  for (std::int64_t i = 0; i < 5; ++i) {
    const TakeResult r = run(ioc, c.take("burst", kSlow, 5));
    REQUIRE(r.has_value());
    CHECK(r->allowed);
    CHECK(r->remaining == 4 - i); // counts down
    CHECK(r->retry_after_ms == 0);
    CHECK(r->reset_ms > 0);
    CHECK(r->reset_ms <= (i + 1) * 10'000);
  }
  CHECK(c.connected());
  const TakeResult r = run(ioc, c.take("burst", kSlow, 5));
  REQUIRE(r.has_value());
  CHECK_FALSE(r->allowed);
  CHECK(r->remaining == 0);
  CHECK(r->retry_after_ms > 0);
  CHECK(r->retry_after_ms <= 10'000);
  CHECK(r->reset_ms <= 50'000);
  // Another key has its own bucket.
  const TakeResult other = run(ioc, c.take("burst-other", kSlow, 5));
  REQUIRE(other.has_value());
  CHECK(other->allowed);
  CHECK(other->remaining == 4);
}

TEST_CASE("redis: the script is cached under the SHA-1 the client calls it by", "[redis]") {
  // A wrong SHA-1 would still work, slowly: every take would be EVALSHA, NOSCRIPT, then EVAL.
  RedisServer server;
  const auto port = server.port();
  const std::string sha(Client::script_sha1());
  CHECK(raw_command(port, {"SCRIPT", "EXISTS", sha}) == "*1\r\n:0\r\n"); // a fresh server
  net::io_context ioc;
  Client c(ioc.get_executor(), "127.0.0.1", port, 1000ms);
  REQUIRE(run(ioc, c.take("sha", kSlow, 5)).has_value()); // NOSCRIPT, then EVAL caches it
  CHECK(raw_command(port, {"SCRIPT", "EXISTS", sha}) == "*1\r\n:1\r\n");
  // Cached under its true SHA-1: only one script is known, and SCRIPT EXISTS finds it by sha.
  CHECK(raw_command(port, {"SCRIPT", "EXISTS", std::string(40, '0')}) == "*1\r\n:0\r\n");
}

TEST_CASE("redis: two clients (two gateways) share one bucket", "[redis]") {
  RedisServer server;
  const auto port = server.port();
  net::io_context ioc;
  Client a(ioc.get_executor(), "127.0.0.1", port, 1000ms);
  Client b(ioc.get_executor(), "127.0.0.1", port, 1000ms);
  for (std::int64_t i = 0; i < 4; ++i) {
    Client& c = i % 2 ? b : a;
    const TakeResult r = run(ioc, c.take("shared", kSlow, 4));
    REQUIRE(r.has_value());
    CHECK(r->allowed);
    CHECK(r->remaining == 3 - i);
  }
  const TakeResult ra = run(ioc, a.take("shared", kSlow, 4));
  const TakeResult rb = run(ioc, b.take("shared", kSlow, 4));
  REQUIRE(ra.has_value());
  REQUIRE(rb.has_value());
  CHECK_FALSE(ra->allowed);
  CHECK_FALSE(rb->allowed);
  CHECK(rb->retry_after_ms > 0);
}

TEST_CASE("redis: concurrent calls get their own replies", "[redis]") {
  RedisServer server;
  const auto port = server.port();
  net::io_context ioc;
  Client c(ioc.get_executor(), "127.0.0.1", port, 2000ms);
  REQUIRE(run(ioc, c.take("warmup", kSlow, 1)).has_value()); // connect and load the script
  constexpr int n = 12;
  std::vector<std::optional<TakeResult>> out(n);
  for (int i = 0; i < n; ++i)
    net::co_spawn(ioc, c.take("concurrent", kSlow, 8),
                  [&out, i](std::exception_ptr e, TakeResult r) {
                    if (e) std::rethrow_exception(e);
                    out[static_cast<std::size_t>(i)] = std::move(r);
                  });
  const auto all_done = [&] {
    return std::all_of(out.begin(), out.end(), [](const auto& o) { return o.has_value(); });
  };
  for (const auto end = Clock::now() + 10s; !all_done() && Clock::now() < end;)
    step(ioc, 20ms);
  REQUIRE(all_done());
  // Commands go out in spawn order and replies come back in order: call i sees the i-th take.
  for (int i = 0; i < n; ++i) {
    const auto& r = *out[static_cast<std::size_t>(i)];
    REQUIRE(r.has_value());
    CHECK(r->allowed == (i < 8));
    CHECK(r->remaining == (i < 8 ? 7 - i : 0));
  }
}

TEST_CASE("redis: a token comes back after the interval", "[redis]") {
  RedisServer server;
  const auto port = server.port();
  net::io_context ioc;
  Client c(ioc.get_executor(), "127.0.0.1", port, 1000ms);
  constexpr std::int64_t interval = 50'000; // 50 ms
  const TakeResult first = run(ioc, c.take("refill", interval, 1));
  REQUIRE(first.has_value());
  CHECK(first->allowed);
  CHECK(first->remaining == 0);
  const TakeResult refused = run(ioc, c.take("refill", interval, 1));
  REQUIRE(refused.has_value());
  REQUIRE_FALSE(refused->allowed);
  CHECK(refused->retry_after_ms > 0);
  CHECK(refused->retry_after_ms <= 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(refused->retry_after_ms + 5));
  const TakeResult again = run(ioc, c.take("refill", interval, 1));
  REQUIRE(again.has_value());
  CHECK(again->allowed);
  // A full bucket after reset_ms: burst 3, take 3, wait reset_ms, 3 more are allowed.
  std::int64_t reset = 0;
  for (int i = 0; i < 3; ++i) {
    const TakeResult r = run(ioc, c.take("reset", interval, 3));
    REQUIRE(r.has_value());
    reset = r->reset_ms;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(reset + 5));
  const TakeResult full = run(ioc, c.take("reset", interval, 3));
  REQUIRE(full.has_value());
  CHECK(full->allowed);
  CHECK(full->remaining == 2);
}

TEST_CASE("redis: a stopped server fails calls, and a restarted one is used again", "[redis]") {
  RedisServer server;
  const auto port = server.port();
  net::io_context ioc;
  const auto timeout = 1000ms;
  Client c(ioc.get_executor(), "127.0.0.1", port, timeout);
  REQUIRE(run(ioc, c.take("down", kSlow, 100)).has_value());

  server.stop();
  const TakeResult r1 = run(ioc, c.take("down", kSlow, 100));
  CHECK_FALSE(r1.has_value());
  CHECK_FALSE(c.connected());
  // In backoff: fails without trying, and says so.
  const TakeResult r2 = run(ioc, c.take("down", kSlow, 100));
  REQUIRE_FALSE(r2.has_value());
  CHECK(r2.error().code == std::errc::not_connected);
  CHECK(r2.error().message.find("redis 127.0.0.1:" + std::to_string(port) + ": down") == 0);
  // Once the backoff is over, a call tries to connect again, and is refused.
  std::optional<TakeResult> r3;
  for (const auto end = Clock::now() + 10s; !r3 && Clock::now() < end;) {
    TakeResult r = run(ioc, c.take("down", kSlow, 100));
    REQUIRE_FALSE(r.has_value());
    if (r.error().message.find(": down (") == std::string::npos)
      r3 = std::move(r);
    else
      std::this_thread::sleep_for(20ms);
  }
  REQUIRE(r3.has_value());
  CHECK(r3->error().code == std::errc::not_connected);
  CHECK(r3->error().message.find("redis 127.0.0.1:" + std::to_string(port) + ": ") == 0);

  server.start(); // same port; the script cache is empty (NOSCRIPT, then EVAL)
  bool ok = false;
  for (const auto end = Clock::now() + 10s; !ok && Clock::now() < end;) {
    const TakeResult r = run(ioc, c.take("down", kSlow, 100));
    ok = r.has_value() && r->allowed;
    if (!ok) std::this_thread::sleep_for(50ms);
  }
  CHECK(ok);
  CHECK(c.connected());
  const TakeResult after = run(ioc, c.take("down", kSlow, 100));
  REQUIRE(after.has_value());
  CHECK(after->allowed);
}

TEST_CASE("redis: a server that never answers fails the call at the timeout", "[redis]") {
  net::io_context ioc;
  // A listener that accepts, reads and never replies.
  net::ip::tcp::acceptor acceptor(ioc, {net::ip::address_v4::loopback(), 0});
  const auto port = acceptor.local_endpoint().port();
  std::vector<std::shared_ptr<net::ip::tcp::socket>> peers;
  auto sink = [&]() -> net::awaitable<void> {
    for (;;) {
      auto [ec, s] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      auto sock = std::make_shared<net::ip::tcp::socket>(std::move(s));
      peers.push_back(sock);
      net::co_spawn(
          ioc,
          [sock]() -> net::awaitable<void> {
            char buf[4096];
            for (;;) {
              auto [rec, n] = co_await sock->async_read_some(net::buffer(buf),
                                                             net::as_tuple(net::use_awaitable));
              if (rec) co_return;
            }
          },
          net::detached);
    }
  };
  net::co_spawn(ioc, sink, net::detached);

  const auto timeout = 200ms;
  Client c(ioc.get_executor(), "127.0.0.1", port, timeout);
  const TakeResult r = run(ioc, c.take("hang", kSlow, 10));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == std::errc::timed_out);
  CHECK(r.error().message ==
        "redis 127.0.0.1:" + std::to_string(port) + ": no reply within 200 ms");
  CHECK_FALSE(c.connected()); // dropped after the timeout
  // Within the backoff the next call fails without sending anything.
  const TakeResult r2 = run(ioc, c.take("hang", kSlow, 10));
  REQUIRE_FALSE(r2.has_value());
  CHECK(r2.error().code == std::errc::not_connected);
  CHECK(r2.error().message.find(": down (timeout); next attempt in ") != std::string::npos);

  SECTION("destroying the client resumes calls in flight with an error") {
    // A new client, without backoff: its call connects and waits.
    auto owned = std::make_unique<Client>(ioc.get_executor(), "127.0.0.1", port, 5000ms);
    std::optional<TakeResult> out;
    net::co_spawn(ioc, owned->take("hang", kSlow, 10), [&](std::exception_ptr e, TakeResult v) {
      if (e) std::rethrow_exception(e);
      out = std::move(v);
    });
    pump(ioc, 100ms); // the command is sent and waits
    REQUIRE_FALSE(out.has_value());
    owned.reset();
    // Long before its 5 s timeout (the bound is generous, not a measurement).
    for (const auto end = Clock::now() + 3s; !out && Clock::now() < end;)
      step(ioc, 5ms);
    REQUIRE(out.has_value());
    REQUIRE_FALSE(out->has_value());
    CHECK(out->error().code == std::errc::not_connected);
  }
  acceptor.close();
  for (auto& p : peers)
    p->close();
  pump(ioc, 50ms);
}
