// gwd's top level: options, and run_daemon(), which loads the table, starts one worker per core
// (own event loop, own SO_REUSEPORT listeners, own upstream pools, own pinned snapshot) and runs
// the main thread's signal handling until a drain completes. Asio stays out of this header.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace gw::server {

struct DaemonOptions {
  std::string table;                        // compiled .gwrt
  std::vector<std::string> listen;          // "127.0.0.1:8080", "[::1]:8080", ":8080"
  unsigned workers = 0;                     // 0: one per core
  std::string access_log;                   // "" off, "-" stdout, else a path
  std::string control;                      // socket; "" = the default, else it must open
  std::string control_group;                // group that may connect (the socket is 0660)
  std::vector<std::string> trusted_proxies; // CIDRs whose X-Forwarded-* / Forwarded are kept
  std::chrono::milliseconds header_timeout{10'000}; // a request's head must arrive within this
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive wait for the next request
  std::chrono::milliseconds drain_timeout{30'000};  // graceful stop: in-flight requests finish
  std::chrono::milliseconds upstream_idle_timeout{30'000}; // pooled upstream connections
  std::size_t max_header_bytes = 32 * 1024;                // 431 past this
  std::size_t max_uri_bytes = 8 * 1024;                    // 414 past this
  std::size_t max_idle_per_endpoint = 128; // pooled connections kept per endpoint and worker
};

/// The control socket when --control is not given.
inline constexpr const char* kDefaultControlSocket = "/run/gw/gwd.sock";

/// Runs gwd until SIGTERM/SIGINT drains it. Returns the process exit code; prints its own
/// errors (bad table, port taken) to stderr.
int run_daemon(const DaemonOptions& opts);

} // namespace gw::server
