// gw::upstream::HttpClient: the data plane's HTTP/1.1 client, for the calls filters ask for
// (policy::HttpCall: external authorization, later fan-out). One per worker, driven by the
// worker's io_context; keep-alive connections pooled per host:port. Beast stays in the .cpp.
// Read next: policy/filter.hpp (HttpCall and HttpReply), redis/client.hpp (the other
// worker-local client).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "gw/policy/filter.hpp"

namespace gw::upstream {

struct HttpClientOptions {
  /// Idle keep-alive connections kept per host:port; more are closed, the oldest first.
  std::size_t max_idle_per_host = 8;
  /// An idle connection older than this is closed instead of reused.
  std::chrono::milliseconds idle_timeout{30'000};
  /// The largest answer head (status line and fields) read; a larger one is an error.
  std::uint32_t max_header_bytes = 32 * 1024;
};

/// HTTP/1.1 calls to services whose address is an IP literal (no DNS lookup on the request path).
/// Worker-local: created, called and destroyed on one io_context thread; holds no lock.
///
/// Each call runs under one deadline (`HttpCall::timeout`) that covers taking or opening a
/// connection, sending and reading the whole answer. Answers are read with a bounded head
/// (`max_header_bytes`) and body (`HttpCall::max_body`), framed by Content-Length, chunked coding
/// or the end of the connection; interim 1xx answers are skipped. A connection is pooled again
/// after a complete exchange that both sides keep alive. A pooled connection is checked before
/// use (a peer that closed it is noticed without a round trip); if one still fails before any
/// byte of the answer arrives, an idempotent call (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) is
/// retried once on a new connection, within the same deadline.
class HttpClient {
public:
  explicit HttpClient(boost::asio::any_io_executor ex, HttpClientOptions opts = {});
  ~HttpClient(); // closes idle connections; calls in flight finish safely (see call)
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Performs `call` (which must stay valid until the call completes: co_await it at once).
  /// Never throws. The reply is `ok` with the status, fields (names lowercase) and body of a
  /// complete answer; otherwise `error` says what failed ("http 10.0.0.5:9000: connecting:
  /// Connection refused"), and `timed_out` is set when the deadline passed. Framing fields in
  /// `call.headers` (Host, Content-Length, hop-by-hop fields) are not sent: the client writes its
  /// own (Host is `call.authority`, or HOST:PORT).
  boost::asio::awaitable<policy::HttpReply> call(const policy::HttpCall& call);

  /// Closes idle connections past `idle_timeout` or closed by their peer. Each call sweeps the
  /// pool of its host:port; a worker calls this now and then for the others.
  void sweep();
  /// Idle connections in the pool, every host:port together.
  std::size_t idle_connections() const noexcept;
  /// Connections opened so far (a reused one is not counted again).
  std::uint64_t connections_opened() const noexcept;

  struct Impl; // private; public only so that the .cpp's free functions can name it

private:
  std::shared_ptr<Impl> impl_; // shared with calls in flight, so they outlive the client safely
};

} // namespace gw::upstream
