// Private: the state one worker thread owns. Worker-local: touched only from the worker's own
// io_context thread, so nothing here needs a lock.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <list>
#include <memory>
#include <vector>

#include "gw/observe/access_log.hpp"
#include "gw/proxy/http_rules.hpp"
#include "gw/runtime/snapshot.hpp"
#include "gw/server/daemon.hpp"
#include "gw/upstream/balancer.hpp"

namespace gw::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

/// An idle upstream connection, kept for reuse after a clean exchange.
struct PooledConnection {
  tcp::socket socket;
  beast::flat_buffer buf;
  std::chrono::steady_clock::time_point idle_since;
  explicit PooledConnection(net::io_context& ioc) : socket(ioc) {}
};

struct EndpointRuntime {
  tcp::endpoint addr;
  std::string address; // as written in the spec, for logs
  std::vector<std::unique_ptr<PooledConnection>> idle;
};

/// An upstream's per-worker state: load, balancer, pools.
struct UpstreamRuntime {
  std::vector<upstream::EndpointLoad> load;
  std::vector<EndpointRuntime> endpoints;
  std::unique_ptr<upstream::Balancer> balancer;
};

/// A live downstream connection as the worker sees it. Timeouts are coarse on purpose: instead of
/// a timer per I/O operation (two extra completions each), a session stores its deadline and the
/// worker's watchdog, ticking every 100 ms, cancels the sockets of sessions past it (nginx's lazy
/// timers follow the same idea).
struct SessionHandle {
  tcp::socket* down = nullptr;
  tcp::socket* up = nullptr; // the upstream socket in use, if any
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool idle = true;
  bool timed_out = false;
};

struct WorkerState {
  unsigned id = 0;
  net::io_context& ioc;
  const server::DaemonOptions& opts;
  runtime::SnapshotPtr snapshot; // the slot: requests pin a copy
  std::vector<UpstreamRuntime> upstreams;
  observe::AccessLog log;
  RequestIdGenerator ids;
  std::vector<Cidr> trusted;
  bool draining = false;
  std::list<SessionHandle> sessions;

  WorkerState(unsigned worker_id, net::io_context& io, const server::DaemonOptions& o,
              observe::LogFile* log_file)
      : id(worker_id), ioc(io), opts(o), log(log_file) {}

  /// Installs a snapshot, rebuilding per-upstream state (pools are dropped).
  void install(runtime::SnapshotPtr s);
  /// Closes pooled connections idle for longer than the configured timeout.
  void sweep_pools(std::chrono::steady_clock::time_point now);
  /// Cancels the I/O of sessions past their deadline (called by the watchdog).
  void expire_sessions(std::chrono::steady_clock::time_point now);
};

/// Serves one accepted connection until it closes. Never throws.
net::awaitable<void> serve_connection(WorkerState& w, tcp::socket socket);

} // namespace gw::proxy
