// Private: what the proxy needs of the worker it runs on. The server module owns the worker
// (server/worker_state.hpp) and hands sessions this narrower view; the proxy never sees the
// daemon's options or its control plane. Worker-local: touched only from the worker's own
// io_context thread, so nothing here needs a lock.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "../upstream/pool.hpp"
#include "gw/observe/access_log.hpp"
#include "gw/observe/stats.hpp"
#include "gw/policy/filter.hpp"
#include "gw/redis/client.hpp"
#include "gw/runtime/snapshot.hpp"
#include "gw/upstream/http_client.hpp"
#include "gw/wire/http_rules.hpp"

namespace gw::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

/// The proxy's limits (from gwd's flags).
struct Limits {
  std::chrono::milliseconds header_timeout{10'000}; // a request's head must arrive within this
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive wait; client writes and reads
  std::size_t max_header_bytes = 32 * 1024;         // 431 past this
  std::size_t max_uri_bytes = 8 * 1024;             // 414 past this
  std::size_t max_idle_per_endpoint = 128;          // pooled connections per endpoint
};

/// One table generation as a worker serves it. A request pins it for its whole life, so the
/// indices it uses (routes, upstreams) always refer to the table it started with.
struct WorkerSnapshot {
  runtime::SnapshotPtr snap;
  std::vector<std::shared_ptr<upstream::UpstreamRuntime>> upstreams; // by upstream index
  std::vector<observe::Counters*> route_stats;                       // by route index
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

struct WorkerContext {
  unsigned id = 0;
  net::io_context& ioc;
  Limits limits;
  std::shared_ptr<WorkerSnapshot> current; // the slot: requests pin a copy
  observe::Counters unrouted;
  observe::AccessLog log;
  wire::RequestIdGenerator ids;
  std::vector<wire::Cidr> trusted;
  bool draining = false;
  /// Set when the worker is being torn down: requests whose coroutines are destroyed without
  /// finishing are not logged into a worker that is going away.
  bool stopped = false;
  std::list<SessionHandle> sessions;
  // Filters' I/O: one Redis connection per server (and timeout) per worker.
  std::unordered_map<std::string, std::unique_ptr<redis::Client>> redis;
  std::unique_ptr<upstream::HttpClient> http; // calls filters ask for (ext_auth), made on first use
  policy::FilterCounters filter_counters;
  /// When a limited note was last written, by what it is about (its text up to the first ':',
  /// "rate limit NAME", "plugin NAME failed"): one failing policy does not silence another.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_note_log;
  std::chrono::steady_clock::time_point last_upstream_error_log{};

  WorkerContext(unsigned worker_id, net::io_context& io, Limits l, observe::LogFile* log_file)
      : id(worker_id), ioc(io), limits(l), log(log_file) {}
};

/// Serves one accepted connection until it closes. Never throws.
net::awaitable<void> serve_connection(WorkerContext& w, tcp::socket socket);

} // namespace gw::proxy
