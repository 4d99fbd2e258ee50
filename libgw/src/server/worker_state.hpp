// Private: the state one worker thread owns. Worker-local: touched only from the worker's own
// io_context thread, so nothing here needs a lock. The proxy sees only `proxy`, its narrower
// view; the rest (endpoints by name, counters by name, overrides) outlives table generations
// and is managed from here.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

#include "../proxy/worker_context.hpp"
#include "gw/observe/stats.hpp"
#include "gw/runtime/overrides.hpp"
#include "gw/runtime/snapshot.hpp"

namespace gw::server {

struct WorkerState {
  proxy::WorkerContext proxy;
  std::chrono::milliseconds upstream_idle_timeout;
  // State that outlives table generations, keyed by stable names.
  std::unordered_map<std::string, std::shared_ptr<upstream::EndpointRuntime>>
      endpoints; // "upstream\naddr"
  std::unordered_map<std::string, observe::Counters> route_stats;
  std::unordered_map<std::string, observe::Counters> upstream_stats;

  WorkerState(unsigned worker_id, boost::asio::io_context& io, proxy::Limits limits,
              std::chrono::milliseconds idle_timeout, observe::LogFile* log_file)
      : proxy(worker_id, io, limits, log_file), upstream_idle_timeout(idle_timeout) {}

  unsigned id() const noexcept { return proxy.id; }
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
  /// Closes every socket the worker holds outside sessions (pools, Redis), before its
  /// io_context goes away.
  void release_io();
};

} // namespace gw::server
