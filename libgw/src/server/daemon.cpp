#include "gw/server/daemon.hpp"

#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <thread>

#include "gw/core/sha256.hpp"
#include "worker.hpp"

namespace gw::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4 interfaces).
Result<tcp::endpoint> parse_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos)
    return fail(errc::invalid_argument, "\"" + s + "\" has no port (write HOST:PORT)");
  std::string host = s.substr(0, colon);
  const std::string port = s.substr(colon + 1);
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return fail(errc::invalid_argument, "\"" + s + "\": bad port");
    p = p * 10 + static_cast<unsigned>(c - '0');
    if (p > 65535) return fail(errc::invalid_argument, "\"" + s + "\": bad port");
  }
  if (port.empty()) return fail(errc::invalid_argument, "\"" + s + "\": bad port");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const auto addr = net::ip::make_address(host, ec);
  if (ec)
    return fail(errc::invalid_argument, "\"" + s + "\": \"" + host + "\" is not an IP address");
  return tcp::endpoint(addr, static_cast<unsigned short>(p));
}

/// With SO_REUSEPORT a second process could silently share our port; a plain bind first makes
/// "port taken" an error, as users expect.
Result<void> check_port_free(const tcp::endpoint& ep) {
  net::io_context ioc;
  tcp::acceptor probe(ioc);
  boost::system::error_code ec;
  probe.open(ep.protocol(), ec);
  if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) probe.bind(ep, ec);
  if (ec) {
    std::string addr =
        ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    return fail(errc::io_error,
                "cannot listen on " + addr + ":" + std::to_string(ep.port()) + ": " + ec.message());
  }
  return {};
}

} // namespace

int run_daemon(const DaemonOptions& opts) {
  if (opts.listen.empty()) {
    std::fprintf(stderr, "gwd: no --listen address\n");
    return 2;
  }
  std::vector<tcp::endpoint> addrs;
  for (const auto& l : opts.listen) {
    auto ep = parse_listen(l);
    if (!ep) {
      std::fprintf(stderr, "gwd: --listen %s\n", ep.error().message.c_str());
      return 2;
    }
    addrs.push_back(*ep);
  }
  for (const auto& c : opts.trusted_proxies)
    if (auto cidr = proxy::Cidr::parse(c); !cidr) {
      std::fprintf(stderr, "gwd: --trusted-proxy %s\n", cidr.error().message.c_str());
      return 2;
    }

  auto snap = runtime::Snapshot::load(opts.table, 1);
  if (!snap) {
    std::fprintf(stderr, "gwd: cannot load %s: %s\n", opts.table.c_str(),
                 snap.error().to_string().c_str());
    return 1;
  }
  std::unique_ptr<observe::LogFile> log;
  if (!opts.access_log.empty()) {
    auto l = observe::LogFile::open(opts.access_log);
    if (!l) {
      std::fprintf(stderr, "gwd: %s\n", l.error().message.c_str());
      return 1;
    }
    log = std::move(*l);
  }
  for (const auto& ep : addrs)
    if (auto r = check_port_free(ep); !r) {
      std::fprintf(stderr, "gwd: %s\n", r.error().message.c_str());
      return 1;
    }

  const unsigned n =
      opts.workers ? opts.workers : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>(i, opts, log.get(), *snap);
    if (auto r = w->listen(addrs); !r) {
      std::fprintf(stderr, "gwd: %s\n", r.error().message.c_str());
      return 1;
    }
    workers.push_back(std::move(w));
  }
  for (auto& w : workers)
    w->start();

  std::string where;
  for (const auto& l : opts.listen)
    where += (where.empty() ? "" : ", ") + l;
  std::fprintf(stderr,
               "gwd: serving %s (generation 1, sha256 %s, %zu routes) on %s with %u worker%s\n",
               opts.table.c_str(), to_hex((*snap)->digest()).substr(0, 12).c_str(),
               (*snap)->config().routes.size(), where.c_str(), n, n == 1 ? "" : "s");

  net::io_context main;
  net::signal_set signals(main, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    std::fprintf(stderr, "gwd: %s: draining (up to %llds)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
                 static_cast<long long>(
                     std::chrono::duration_cast<std::chrono::seconds>(opts.drain_timeout).count()));
    const auto deadline = std::chrono::steady_clock::now() + opts.drain_timeout;
    for (auto& w : workers)
      w->drain(deadline);
  });
  ::signal(SIGPIPE, SIG_IGN);
  std::thread waiter([&] {
    for (auto& w : workers)
      w->join();
    main.stop();
  });
  main.run();
  waiter.join();
  std::fprintf(stderr, "gwd: stopped\n");
  return 0;
}

} // namespace gw::server
