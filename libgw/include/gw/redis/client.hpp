// gw::redis::Client: a non-blocking Redis client for gwd's distributed rate limits.
// hiredis (async API) driven by the worker's io_context; no threads, no locks.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gw/core/error.hpp"

namespace gw::redis {

/// One connection to one Redis server, owned by one worker (one io_context); not thread-safe.
/// Connects lazily, reconnects after failures with a backoff (100 ms doubling to 2 s), and while
/// disconnected fails calls immediately instead of queueing them, so a dead Redis costs a request
/// no more than `timeout`.
///
/// Errors: std::errc::timed_out (no reply within `timeout`; the connection is then dropped),
/// std::errc::not_connected (in backoff, connect failed, connection lost with the call in
/// flight, or the client was destroyed), gw::errc::io_error (an error reply or an unexpected
/// reply), gw::errc::invalid_argument (interval or burst not positive).
class Client {
public:
  /// `host` should be an IP literal: hiredis resolves names with a blocking getaddrinfo.
  Client(boost::asio::any_io_executor ex, std::string host, std::uint16_t port,
         std::chrono::milliseconds timeout);
  ~Client(); // safe with calls in flight: their coroutines are resumed with an error
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  struct Take {
    bool allowed;
    std::int64_t remaining;      // tokens left after this take
    std::int64_t retry_after_ms; // when refused: ms until the next token (> 0); else 0
    std::int64_t reset_ms;       // ms until the bucket is full again
  };

  /// GCRA for `key` (a token bucket of `burst` tokens refilled one every `interval_us`),
  /// evaluated atomically by a Lua script on the server's clock; EVALSHA with EVAL fallback.
  boost::asio::awaitable<Result<Take>> take(std::string_view key, std::int64_t interval_us,
                                            std::int64_t burst);

  bool connected() const noexcept;

  /// The SHA-1 (hex) of the rate limit script: the name EVALSHA calls it by, and SCRIPT EXISTS
  /// finds it by on a server that has run it.
  static std::string_view script_sha1() noexcept;

  struct Impl; // private; public only so that the .cpp's free functions can name it

private:
  std::shared_ptr<Impl> impl_; // shared with calls in flight, so they outlive the Client safely
};

} // namespace gw::redis
