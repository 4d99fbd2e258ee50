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
#include <unordered_map>
#include <vector>

#include "gw/observe/access_log.hpp"
#include "gw/observe/stats.hpp"
#include "gw/policy/filter.hpp"
#include "gw/redis/client.hpp"
#include "gw/runtime/overrides.hpp"
#include "gw/runtime/snapshot.hpp"
#include "gw/server/daemon.hpp"
#include "gw/upstream/balancer.hpp"
#include "gw/wire/http_rules.hpp"

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

/// An endpoint as one worker sees it: load, pool, counters, override. Shared by every table
/// generation that lists it (matched by upstream name and address), so pools and counters
/// survive reloads; a request holds it while it uses it.
struct EndpointRuntime {
  tcp::endpoint addr;
  std::string upstream;
  std::string address; // as written in the spec
  upstream::EndpointLoad load;
  runtime::EndpointState state = runtime::EndpointState::ready;
  std::vector<std::unique_ptr<PooledConnection>> idle;
  std::uint64_t requests = 0, failures = 0;
};

/// An upstream in one table generation, per worker: its endpoints and balancer.
struct UpstreamRuntime {
  std::vector<std::shared_ptr<EndpointRuntime>> endpoints;
  std::vector<const upstream::EndpointLoad*> loads; // views of endpoints[i]->load
  std::vector<std::string_view> ids;                // views of endpoints[i]->address
  std::unique_ptr<upstream::Balancer> balancer;
  observe::Counters* stats = nullptr;
};

/// One table generation as a worker serves it. A request pins it for its whole life, so the
/// indices it uses (routes, upstreams) always refer to the table it started with.
struct WorkerSnapshot {
  runtime::SnapshotPtr snap;
  std::vector<std::shared_ptr<UpstreamRuntime>> upstreams; // by upstream index
  std::vector<observe::Counters*> route_stats;             // by route index
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
  std::shared_ptr<WorkerSnapshot> current; // the slot: requests pin a copy
  // State that outlives table generations, keyed by stable names.
  std::unordered_map<std::string, std::shared_ptr<EndpointRuntime>> endpoints; // "upstream\naddr"
  std::unordered_map<std::string, observe::Counters> route_stats;
  std::unordered_map<std::string, observe::Counters> upstream_stats;
  observe::Counters unrouted;
  observe::AccessLog log;
  wire::RequestIdGenerator ids;
  std::vector<wire::Cidr> trusted;
  bool draining = false;
  std::list<SessionHandle> sessions;
  // Distributed rate limits: one Redis connection per server (and timeout) per worker.
  std::unordered_map<std::string, std::unique_ptr<redis::Client>> redis;
  policy::FilterCounters filter_counters; // bumped by the route's filters (store errors, ...)
  std::chrono::steady_clock::time_point last_note_log{}; // filters' rate-limited log lines
  std::chrono::steady_clock::time_point last_upstream_error_log{};

  WorkerState(unsigned worker_id, net::io_context& io, const server::DaemonOptions& o,
              observe::LogFile* log_file)
      : id(worker_id), ioc(io), opts(o), log(log_file) {}

  /// Serves a new table generation from now on. Endpoints (with their pools and counters)
  /// carry over by upstream name and address; overrides are applied to new ones.
  void install(runtime::SnapshotPtr s, const runtime::Overrides& overrides);
  /// Applies an endpoint override now (drain/maint stop new requests; maint closes the pool).
  void set_override(const std::string& upstream, const std::string& address,
                    runtime::EndpointState st);
  /// A copy of this worker's counters, for the control plane.
  observe::StatsView stats() const;
  /// Closes pooled connections idle for longer than the configured timeout.
  void sweep_pools(std::chrono::steady_clock::time_point now);
  /// Cancels the I/O of sessions past their deadline (called by the watchdog).
  void expire_sessions(std::chrono::steady_clock::time_point now);
};

/// Serves one accepted connection until it closes. Never throws.
net::awaitable<void> serve_connection(WorkerState& w, tcp::socket socket);

} // namespace gw::proxy
