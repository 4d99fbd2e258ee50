#include "worker.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

namespace gw::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

namespace {
tcp::endpoint to_endpoint(const runtime::ResolvedEndpoint& ep) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&ep.addr);
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ep.addr);
    return tcp::endpoint(net::ip::address_v4(ntohl(in->sin_addr.s_addr)), ntohs(in->sin_port));
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ep.addr);
  net::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), &in6->sin6_addr, 16);
  return tcp::endpoint(net::ip::address_v6(b, in6->sin6_scope_id), ntohs(in6->sin6_port));
}

void apply_state(upstream::EndpointRuntime& e, runtime::EndpointState st) {
  e.state = st;
  e.load.usable = st == runtime::EndpointState::ready;
  if (st == runtime::EndpointState::maint) e.idle.clear();
}
} // namespace

void WorkerState::install(runtime::SnapshotPtr s, const runtime::Overrides& overrides) {
  auto ws = std::make_shared<proxy::WorkerSnapshot>();
  ws->snap = std::move(s);
  const auto& cfg = ws->snap->config();
  const std::shared_ptr<proxy::WorkerSnapshot> previous = proxy.current;
  for (std::uint32_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& up = cfg.upstreams[i];
    auto ur = std::make_shared<upstream::UpstreamRuntime>();
    for (const auto& ep : ws->snap->endpoints(i)) {
      auto& slot = endpoints[up.name + "\n" + ep.address];
      if (!slot) {
        slot = std::make_shared<upstream::EndpointRuntime>();
        slot->upstream = up.name;
        slot->address = ep.address;
        auto o = overrides.find({up.name, ep.address});
        apply_state(*slot, o == overrides.end() ? runtime::EndpointState::ready : o->second);
      }
      slot->addr = to_endpoint(ep);
      slot->load.weight = ep.weight;
      ur->endpoints.push_back(slot);
      ur->loads.push_back(&slot->load);
      ur->ids.push_back(slot->address);
    }
    // An unchanged upstream keeps its balancer (e.g. its round-robin position).
    if (previous) {
      const auto& pcfg = previous->snap->config();
      for (std::uint32_t k = 0; k < pcfg.upstreams.size(); ++k) {
        auto& old = previous->upstreams[k];
        if (pcfg.upstreams[k].name == up.name && pcfg.upstreams[k].balance == up.balance &&
            pcfg.upstreams[k].hash_on == up.hash_on && old->endpoints == ur->endpoints) {
          ur->balancer = std::move(old->balancer);
          // Requests still on the old generation may pick again (retries): give them their own.
          old->balancer =
              upstream::Balancer::make(up.balance, old->loads, old->ids, 0x5eed + id() * 7919 + k);
        }
      }
    }
    if (!ur->balancer)
      ur->balancer =
          upstream::Balancer::make(up.balance, ur->loads, ur->ids, 0x5eed + id() * 7919 + i);
    ur->stats = &upstream_stats[up.name];
    ws->upstreams.push_back(std::move(ur));
  }
  for (const auto& r : cfg.routes)
    ws->route_stats.push_back(&route_stats[r.name]);
  proxy.current = std::move(ws);
}

void WorkerState::set_override(const std::string& upstream, const std::string& address,
                               runtime::EndpointState st) {
  auto it = endpoints.find(upstream + "\n" + address);
  if (it != endpoints.end()) apply_state(*it->second, st);
}

observe::StatsView WorkerState::stats() const {
  observe::StatsView v;
  for (const auto& [k, c] : route_stats)
    v.routes[k] = c;
  for (const auto& [k, c] : upstream_stats)
    v.upstreams[k] = c;
  v.unrouted = proxy.unrouted;
  v.connections = proxy.sessions.size();
  v.rate_limit_store_errors = proxy.filter_counters.rate_limit_store_errors;
  v.ext_auth_errors = proxy.filter_counters.ext_auth_errors;
  v.lua_errors = proxy.filter_counters.lua_errors;
  for (const auto& [k, e] : endpoints) {
    if (e.use_count() == 1) continue; // no table generation lists it and no request holds it
    v.endpoints.push_back(observe::EndpointView{
        e->upstream, e->address, std::string(runtime::to_string(e->state)), e->load.weight,
        e->load.active, e->idle.size(), e->requests, e->failures});
  }
  return v;
}

void WorkerState::expire_sessions(Clock::time_point now) {
  boost::system::error_code ec;
  for (auto& h : proxy.sessions) {
    if (h.timed_out || now < h.deadline) continue;
    h.timed_out = true;
    if (h.down) h.down->cancel(ec);
    if (h.up) h.up->cancel(ec);
  }
}

void WorkerState::sweep_pools(Clock::time_point now) {
  if (proxy.http) proxy.http->sweep();
  for (auto it = endpoints.begin(); it != endpoints.end();) {
    auto& e = *it->second;
    std::erase_if(e.idle, [&](const std::unique_ptr<upstream::PooledConnection>& c) {
      return now - c->idle_since > upstream_idle_timeout;
    });
    // An endpoint that no table generation lists any more, and no request holds, goes away.
    if (it->second.use_count() == 1)
      it = endpoints.erase(it);
    else
      ++it;
  }
}

void WorkerState::release_io() {
  for (auto& [k, e] : endpoints)
    e->idle.clear();
  proxy.redis.clear();
  proxy.http.reset();
}

namespace {
proxy::Limits limits_of(const DaemonOptions& o) {
  proxy::Limits l;
  l.header_timeout = o.header_timeout;
  l.idle_timeout = o.idle_timeout;
  l.max_header_bytes = o.max_header_bytes;
  l.max_uri_bytes = o.max_uri_bytes;
  l.max_idle_per_endpoint = o.max_idle_per_endpoint;
  return l;
}
} // namespace

Worker::Worker(unsigned id, const DaemonOptions& opts, observe::LogFile* log,
               runtime::SnapshotPtr snap)
    : state_(std::make_unique<WorkerState>(id, ioc_, limits_of(opts), opts.upstream_idle_timeout,
                                           log)) {
  for (const auto& c : opts.trusted_proxies)
    if (auto cidr = wire::Cidr::parse(c)) state_->proxy.trusted.push_back(*cidr);
  state_->install(std::move(snap), {});
}

Worker::~Worker() {
  join();
  // Sessions still suspended are destroyed with the io_context, after this: they must not log,
  // and the sockets the state holds must close while their context still exists.
  state_->proxy.stopped = true;
  state_->release_io();
}

Result<void> Worker::listen(const std::vector<tcp::endpoint>& addrs) {
  for (const auto& ep : addrs) {
    auto a = std::make_unique<tcp::acceptor>(ioc_);
    boost::system::error_code ec;
    a->open(ep.protocol(), ec);
    if (!ec) a->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      // SO_REUSEPORT: every worker has its own listening socket; the kernel spreads connections.
      const int one = 1;
      if (::setsockopt(a->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        ec = boost::system::error_code(errno, boost::system::system_category());
    }
    if (!ec) a->bind(ep, ec);
    if (!ec) a->listen(1024, ec);
    if (ec) {
      std::string addr =
          ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
      return fail(errc::io_error, "cannot listen on " + addr + ":" + std::to_string(ep.port()) +
                                      ": " + ec.message());
    }
    acceptors_.push_back(std::move(a));
  }
  return {};
}

std::vector<tcp::endpoint> Worker::bound() const {
  std::vector<tcp::endpoint> out;
  for (const auto& a : acceptors_) {
    boost::system::error_code ec;
    out.push_back(a->local_endpoint(ec));
  }
  return out;
}

net::awaitable<void> Worker::accept_loop(tcp::acceptor& a) {
  for (;;) {
    auto [ec, socket] = co_await a.async_accept(kTuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !a.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      net::steady_timer t(ioc_, std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    net::co_spawn(ioc_, proxy::serve_connection(state_->proxy, std::move(socket)),
                  [](std::exception_ptr e) {
                    // A session never lets an exception escape by design; if one does, the
                    // connection is lost, not the process.
                    if (e) {
                      try {
                        std::rethrow_exception(e);
                      } catch (const std::exception& x) {
                        std::fprintf(stderr, "gwd: session error: %s\n", x.what());
                      }
                    }
                  });
  }
}

net::awaitable<void> Worker::housekeeping() {
  // The watchdog tick: session timeouts (100 ms resolution), access log flush, pool sweep.
  net::steady_timer t(ioc_);
  for (unsigned tick = 0;; ++tick) {
    t.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await t.async_wait(kTuple);
    if (ec) co_return;
    const auto now = Clock::now();
    state_->expire_sessions(now);
    if (tick % 2 == 0) state_->proxy.log.flush();
    if (tick % 10 == 0) state_->sweep_pools(now);
  }
}

void Worker::start() {
  for (auto& a : acceptors_)
    net::co_spawn(ioc_, accept_loop(*a), net::detached);
  net::co_spawn(ioc_, housekeeping(), net::detached);
  thread_ = std::thread([this] {
    ioc_.run();
    state_->proxy.log.flush();
  });
}

void Worker::post(std::function<void(WorkerState&)> fn) {
  net::post(ioc_, [this, fn = std::move(fn)] { fn(*state_); });
}

void Worker::drain(Clock::time_point deadline) {
  net::post(ioc_, [this, deadline] {
    state_->proxy.draining = true;
    boost::system::error_code ec;
    for (auto& a : acceptors_)
      a->close(ec);
    // Idle keep-alive connections close now; busy ones finish their request first.
    for (auto& s : state_->proxy.sessions)
      if (s.idle) s.down->cancel(ec);
    auto timer = std::make_shared<net::steady_timer>(ioc_);
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [this, timer, poll, deadline] {
      if (state_->proxy.sessions.empty() || Clock::now() >= deadline) {
        // Stopping the loop abandons the requests still running: say how many were cut.
        const auto busy =
            std::count_if(state_->proxy.sessions.begin(), state_->proxy.sessions.end(),
                          [](const proxy::SessionHandle& s) { return !s.idle; });
        if (busy > 0)
          std::fprintf(stderr,
                       "gwd: worker %u: closing %zu connection(s) with a request in flight\n",
                       state_->id(), static_cast<std::size_t>(busy));
        state_->proxy.log.flush();
        ioc_.stop();
        *poll = nullptr; // break the cycle
        return;
      }
      boost::system::error_code ignored;
      for (auto& s : state_->proxy.sessions)
        if (s.idle) s.down->cancel(ignored);
      timer->expires_after(std::chrono::milliseconds(20));
      timer->async_wait([poll](boost::system::error_code) {
        if (*poll) (*poll)();
      });
    };
    (*poll)();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

} // namespace gw::server
