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

Worker::Worker(unsigned id, const DaemonOptions& opts, observe::LogFile* log,
               runtime::SnapshotPtr snap)
    : state_(id, ioc_, opts, log) {
  for (const auto& c : opts.trusted_proxies)
    if (auto cidr = wire::Cidr::parse(c)) state_.trusted.push_back(*cidr);
  state_.install(std::move(snap), {});
}

Worker::~Worker() {
  join();
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
    net::co_spawn(ioc_, proxy::serve_connection(state_, std::move(socket)),
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
    state_.expire_sessions(now);
    if (tick % 2 == 0) state_.log.flush();
    if (tick % 10 == 0) state_.sweep_pools(now);
  }
}

void Worker::start() {
  for (auto& a : acceptors_)
    net::co_spawn(ioc_, accept_loop(*a), net::detached);
  net::co_spawn(ioc_, housekeeping(), net::detached);
  thread_ = std::thread([this] {
    ioc_.run();
    state_.log.flush();
  });
}

void Worker::post(std::function<void(proxy::WorkerState&)> fn) {
  net::post(ioc_, [this, fn = std::move(fn)] { fn(state_); });
}

void Worker::drain(Clock::time_point deadline) {
  net::post(ioc_, [this, deadline] {
    state_.draining = true;
    boost::system::error_code ec;
    for (auto& a : acceptors_)
      a->close(ec);
    // Idle keep-alive connections close now; busy ones finish their request first.
    for (auto& s : state_.sessions)
      if (s.idle) s.down->cancel(ec);
    auto timer = std::make_shared<net::steady_timer>(ioc_);
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [this, timer, poll, deadline] {
      if (state_.sessions.empty() || Clock::now() >= deadline) {
        // Stopping the loop abandons the requests still running: say how many were cut.
        const auto busy = std::count_if(state_.sessions.begin(), state_.sessions.end(),
                                        [](const proxy::SessionHandle& s) { return !s.idle; });
        if (busy > 0)
          std::fprintf(stderr,
                       "gwd: worker %u: closing %zu connection(s) with a request in flight\n",
                       state_.id, static_cast<std::size_t>(busy));
        state_.log.flush();
        ioc_.stop();
        *poll = nullptr; // break the cycle
        return;
      }
      boost::system::error_code ignored;
      for (auto& s : state_.sessions)
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
