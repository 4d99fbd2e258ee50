// Private: a worker's upstream endpoints and their pools of idle connections. Worker-local:
// touched only from the worker's own io_context thread, so nothing here needs a lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

#include "gw/observe/stats.hpp"
#include "gw/runtime/overrides.hpp"
#include "gw/upstream/balancer.hpp"

namespace gw::upstream {

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
  EndpointLoad load;
  runtime::EndpointState state = runtime::EndpointState::ready;
  std::vector<std::unique_ptr<PooledConnection>> idle;
  std::uint64_t requests = 0, failures = 0;
};

/// An upstream in one table generation, per worker: its endpoints and balancer.
struct UpstreamRuntime {
  std::vector<std::shared_ptr<EndpointRuntime>> endpoints;
  std::vector<const EndpointLoad*> loads; // views of endpoints[i]->load
  std::vector<std::string_view> ids;      // views of endpoints[i]->address
  std::unique_ptr<Balancer> balancer;
  observe::Counters* stats = nullptr;
};

/// A pooled connection to `ep`, the most recently used first, or null. One idle for more than
/// a second is checked with a peek (EOF or stray bytes mean it is dead); a fresher one is
/// trusted, which saves a system call per request under load, and the reused-connection retry
/// covers the rare race with an upstream closing it.
inline std::unique_ptr<PooledConnection> checkout(EndpointRuntime& ep,
                                                  std::chrono::steady_clock::time_point now) {
  while (!ep.idle.empty()) {
    auto c = std::move(ep.idle.back());
    ep.idle.pop_back();
    if (now - c->idle_since > std::chrono::seconds(1)) {
      char probe;
      const ssize_t n = ::recv(c->socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) continue;
    }
    return c;
  }
  return nullptr;
}

/// Returns a connection after a clean exchange, unless the endpoint is in maintenance or its
/// pool is full.
inline void checkin(EndpointRuntime& ep, std::unique_ptr<PooledConnection> c, std::size_t max_idle,
                    std::chrono::steady_clock::time_point now) {
  if (c->buf.size() != 0 || ep.state == runtime::EndpointState::maint || ep.idle.size() >= max_idle)
    return;
  c->idle_since = now;
  ep.idle.push_back(std::move(c));
}

} // namespace gw::upstream
