#include "gw/server/daemon.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <systemd/sd-daemon.h>
#include <thread>
#include <type_traits>
#include <unistd.h>

#include "daemon_state.hpp"
#include "gw/core/file.hpp"
#include "gw/core/sha256.hpp"
#include "gw/core/text.hpp"
#include "gw/table/codec.hpp"

namespace gw::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

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

/// "127.0.0.1:8080", "[::1]:8080".
std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string addr =
      ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
  return addr + ":" + std::to_string(ep.port());
}

/// With SO_REUSEPORT a second process could silently share our port; a plain bind first makes
/// "port taken" an error, as users expect. Port 0 needs no probe: the kernel gives a port-0 bind
/// a port no socket holds, SO_REUSEPORT or not.
Result<void> check_port_free(const tcp::endpoint& ep) {
  if (ep.port() == 0) return {};
  net::io_context ioc;
  tcp::acceptor probe(ioc);
  boost::system::error_code ec;
  probe.open(ep.protocol(), ec);
  if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) probe.bind(ep, ec);
  if (ec)
    return fail(errc::io_error, "cannot listen on " + endpoint_text(ep) + ": " + ec.message());
  return {};
}

std::string short_digest(const Sha256& d) {
  return to_hex(d).substr(0, 12);
}

nlohmann::json table_json(const runtime::Snapshot& s) {
  return {{"generation", s.generation()},
          {"sha256", to_hex(s.digest())},
          {"path", s.source()},
          {"routes", s.config().routes.size()},
          {"upstreams", s.config().upstreams.size()},
          {"policies", s.config().policies.size()}};
}

/// The refusal of a table that cannot be served: its error code, and one diagnostic in the
/// shape `gwctl validate --format json` prints.
Reply table_refused(const std::string& path, const Error& e) {
  return Reply::error(e.code_name(), e.message,
                      nlohmann::json::array({{{"severity", "error"},
                                              {"code", e.code_name()},
                                              {"message", e.message},
                                              {"file", path},
                                              {"line", 0},
                                              {"column", 0}}}));
}

/// The barrier behind reloads and stats: runs `f` on every worker's thread and resumes on the
/// main thread once each worker has answered, with the answers in worker order.
template <class F>
auto ask_workers(net::io_context& main, std::vector<std::unique_ptr<Worker>>& workers, F f)
    -> net::awaitable<std::vector<std::invoke_result_t<F&, WorkerState&>>> {
  using T = std::invoke_result_t<F&, WorkerState&>;
  auto answers = std::make_shared<std::vector<T>>(workers.size());
  auto remaining = std::make_shared<std::size_t>(workers.size());
  // Cancelled by the last answer. Only the main thread touches it: workers post their answers.
  net::steady_timer done(main, Clock::time_point::max());
  for (std::size_t i = 0; i < workers.size(); ++i)
    workers[i]->post([f, i, answers, remaining, &done, &main](WorkerState& st) {
      net::post(main, [a = f(st), i, answers, remaining, &done]() mutable {
        (*answers)[i] = std::move(a);
        if (--*remaining == 0) done.cancel();
      });
    });
  if (!workers.empty()) co_await done.async_wait(kTuple);
  co_return std::move(*answers);
}

} // namespace

Daemon::Daemon(const DaemonOptions& opts, net::io_context& main,
               std::vector<std::unique_ptr<Worker>>& workers, observe::LogFile* log,
               runtime::SnapshotPtr first, std::vector<std::string> listeners)
    : opts_(opts), main_(main), workers_(workers), log_(log), current_(std::move(first)),
      table_path_(opts.table), listeners_(std::move(listeners)),
      served_({{"how", "startup"},
               {"path", opts.table},
               {"reason", "loaded from " + opts.table + " at startup"}}) {}

net::awaitable<void> Daemon::publish(runtime::SnapshotPtr s) {
  // RCU through the event loops: every worker installs the new generation between two events
  // and acknowledges; requests already running keep the generation they pinned.
  auto install = [s, overrides = overrides_](WorkerState& st) {
    st.install(s, overrides);
    return true; // installed
  };
  co_await ask_workers(main_, workers_, std::move(install));
  previous_ = std::move(current_);
  current_ = std::move(s);
}

net::awaitable<Reply> Daemon::check(std::string path) {
  // Like a reload, a check may wait for a new JWKS URL's first fetch: it loads on the loader
  // thread, and so it is serialised with reloads.
  auto lock = lock_reload();
  if (!lock) co_return std::move(lock.error());
  auto s = co_await load(path, 0);
  if (!s) co_return table_refused(path, s.error());
  Reply r;
  r.result = table_json(**s);
  r.result.erase("generation");
  r.result["unchanged"] = (*s)->digest() == current_->digest();
  co_return r;
}

net::awaitable<Result<runtime::SnapshotPtr>>
Daemon::load(std::string file, std::uint64_t generation, std::string source) {
  // Loading may wait seconds for a new JWKS URL's first fetch: it runs on a thread of its own,
  // so that the main thread keeps serving the control socket (a reload meanwhile gets `busy`)
  // and signals. Reloads are serialised, so the previous loader has finished by now.
  if (loader_.joinable()) loader_.join();
  auto result = std::make_shared<std::optional<Result<runtime::SnapshotPtr>>>();
  // Cancelled once the result is in. Only the main thread touches it: the loader posts.
  net::steady_timer done(main_, Clock::time_point::max());
  loader_ = std::thread([file = std::move(file), generation, source = std::move(source), result,
                         &done, &main = main_]() mutable {
    *result = runtime::Snapshot::load(file, generation, std::move(source));
    net::post(main, [&done] { done.cancel(); });
  });
  co_await done.async_wait(kTuple);
  co_return std::move(**result);
}

Daemon::~Daemon() {
  if (loader_.joinable()) loader_.join();
}

net::awaitable<Reply> Daemon::reload(std::optional<std::string> path, bool install) {
  auto lock = lock_reload();
  if (!lock) co_return std::move(lock.error());
  const auto t0 = Clock::now();
  const std::string staged = install ? *path : std::string();
  const std::string file = install ? table_path_ : path ? *path : table_path_;
  const std::uint64_t old_generation = current_->generation();
  auto s = co_await load(install ? staged : file, last_generation_ + 1, file);
  Reply r;
  if (!s) {
    r = table_refused(install ? staged : file, s.error());
  } else if (auto moved = install ? install_staged(staged, file) : Result<void>{}; !moved) {
    r = Reply::error("io_error", moved.error().message);
  } else if (!path && stale_file_ && file == stale_file_->path &&
             sha256((*s)->file_bytes()) == stale_file_->sha256) {
    // A rollback that could not write its table back left the file holding the table it rolled
    // back from: re-reading it (SIGHUP, systemctl reload) would silently undo the rollback.
    r = Reply::error("rolled_back",
                     file + " still holds the table that the rollback to generation " +
                         std::to_string(stale_file_->generation) + " could not replace (" +
                         stale_file_->reason + "); generation " + std::to_string(old_generation) +
                         " keeps serving. Write a new table there, or name the file (gwctl "
                         "reload " +
                         file + ") to serve it anyway");
  } else if ((*s)->digest() == current_->digest()) {
    if (file != table_path_)
      served_ = {{"how", "reload"}, {"path", file}, {"reason", "reloaded from " + file}};
    table_path_ = file;
    r.result = {{"unchanged", true},
                {"generation", old_generation},
                {"sha256", to_hex(current_->digest())}};
  } else {
    const std::size_t old_routes = current_->config().routes.size();
    const std::string old_digest = to_hex(current_->digest());
    ++last_generation_;
    co_await publish(*s);
    table_path_ = file;
    stale_file_.reset();
    served_ = {{"how", "reload"}, {"path", file}, {"reason", "reloaded from " + file}};
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
    r.result = {{"unchanged", false},
                {"previous_generation", old_generation},
                {"generation", current_->generation()},
                {"previous_sha256", old_digest},
                {"sha256", to_hex(current_->digest())},
                {"previous_routes", old_routes},
                {"routes", current_->config().routes.size()},
                {"workers", workers_.size()},
                {"took_ms", static_cast<double>(took.count()) / 1000.0},
                {"path", file}};
  }
  last_reload_ = {{"time_unix", std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count()},
                  {"ok", r.ok},
                  {"path", file},
                  {"message", r.ok ? (r.result.value("unchanged", false) ? "unchanged" : "reloaded")
                                   : r.message}};
  std::fprintf(stderr, "gwd: reload %s: %s\n", file.c_str(),
               !r.ok ? ("rejected: " + r.message).c_str()
               : r.result.value("unchanged", false)
                   ? ("unchanged (generation " + std::to_string(old_generation) + ")").c_str()
                   : ("generation " + std::to_string(old_generation) + " -> " +
                      std::to_string(current_->generation()) + ", sha256 " +
                      short_digest(current_->digest()))
                         .c_str());
  co_return r;
}

net::awaitable<Reply> Daemon::rollback() {
  auto lock = lock_reload();
  if (!lock) co_return std::move(lock.error());
  if (!previous_)
    co_return Reply::error("no_previous", "there is no previous generation to return to");
  // The previous generation comes back with its file: usually a newer table was written over
  // that file since, and a reload (SIGHUP, systemctl reload) or a restart would serve the newer
  // table again. Its bytes go back first, atomically; when that is impossible (a read-only
  // directory) the rollback still happens, says so, and reloads refuse to undo it silently.
  const std::string file = previous_->source();
  auto s = runtime::Snapshot::republish(*previous_, last_generation_ + 1, file);
  if (!s) co_return Reply::error("internal", s.error().message);
  const std::string& bytes = previous_->file_bytes();
  auto on_disk = file::read_all(file, table::kMaxTableBytes);
  std::string write_error;
  if (!on_disk || *on_disk != bytes) {
    auto w = file::write_atomic(
        file, std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
    if (!w) write_error = w.error().message;
  }
  const std::uint64_t old_generation = current_->generation();
  const std::uint64_t restored = previous_->generation();
  ++last_generation_;
  co_await publish(*s);
  table_path_ = file;
  std::string reason = "rolled back from generation " + std::to_string(old_generation) +
                       " to the table of generation " + std::to_string(restored);
  if (write_error.empty()) {
    stale_file_.reset();
    reason += ", " + file + " holds it again";
  } else {
    stale_file_ =
        StaleFile{file, on_disk ? sha256(*on_disk) : Sha256{}, current_->generation(), write_error};
    reason += ", in memory only (" + write_error + "): a restart serves what " + file + " holds";
  }
  served_ = {{"how", "rollback"},
             {"path", file},
             {"rolled_back_from", old_generation},
             {"restored_generation", restored},
             {"file_written", write_error.empty()},
             {"reason", reason}};
  Reply r;
  r.result = {{"previous_generation", old_generation},
              {"generation", current_->generation()},
              {"restored_generation", restored},
              {"sha256", to_hex(current_->digest())},
              {"path", file},
              {"file_written", write_error.empty()}};
  if (!write_error.empty())
    r.result["warning"] = "cannot write the table back to " + file + " (" + write_error +
                          "): a restart serves what the file holds";
  std::fprintf(stderr,
               "gwd: rollback: generation %llu -> %llu (the table of generation %llu), %s\n",
               static_cast<unsigned long long>(old_generation),
               static_cast<unsigned long long>(current_->generation()),
               static_cast<unsigned long long>(restored),
               write_error.empty() ? ("written back to " + file).c_str()
                                   : ("in memory only: " + write_error).c_str());
  co_return r;
}

net::awaitable<observe::StatsView> Daemon::stats() {
  auto collect = [](WorkerState& st) { return st.stats(); };
  const auto views = co_await ask_workers(main_, workers_, collect);
  observe::StatsView all;
  for (const auto& v : views)
    all.merge(v);
  co_return all;
}

Reply Daemon::set_endpoint(const std::string& upstream, const std::string& address,
                           runtime::EndpointState st) {
  // Only endpoints the running table knows; the override then follows them across reloads.
  const auto* up = current_->config().find_upstream(upstream);
  if (!up)
    return Reply::error("unknown_upstream",
                        "no upstream " + text::quote(upstream) + " in the running table");
  bool found = false;
  for (const auto& e : up->endpoints)
    found = found || e.address() == address;
  if (!found)
    return Reply::error("unknown_endpoint",
                        "upstream " + text::quote(upstream) + " has no endpoint " + address);
  if (st == runtime::EndpointState::ready)
    overrides_.erase({upstream, address});
  else
    overrides_[{upstream, address}] = st;
  for (auto& w : workers_)
    w->post([upstream, address, st](WorkerState& ws) { ws.set_override(upstream, address, st); });
  Reply r;
  r.result = {{"upstream", upstream}, {"address", address}, {"state", runtime::to_string(st)}};
  std::fprintf(stderr, "gwd: endpoint %s/%s set to %s\n", upstream.c_str(), address.c_str(),
               std::string(runtime::to_string(st)).c_str());
  return r;
}

Reply Daemon::reopen_logs() {
  if (!log_) return Reply::error("no_access_log", "gwd runs without an access log");
  if (auto r = log_->reopen(); !r) return Reply::error("io_error", r.error().message);
  Reply r;
  r.result = {{"path", log_->path()}};
  return r;
}

nlohmann::json Daemon::info() const {
  return {{"version", GW_VERSION},
          {"pid", ::getpid()},
          {"uptime_s",
           std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count()},
          {"workers", workers_.size()},
          {"listeners", listeners_},
          {"table", table_json(*current_)},
          {"table_path", table_path_},
          {"served", served_},
          {"loaded_unix", std::chrono::duration_cast<std::chrono::seconds>(
                              current_->loaded_at().time_since_epoch())
                              .count()},
          {"previous_generation",
           previous_ ? nlohmann::json(previous_->generation()) : nlohmann::json(nullptr)},
          {"last_reload", last_reload_},
          {"overrides", overrides_.size()},
          {"access_log", log_ ? log_->path() : ""},
          {"stopping", stopping_}};
}

Result<void> Daemon::install_staged(const std::string& staged, const std::string& file) {
  // A rename within the directory is atomic: the file holds the old table or the new one.
  if (::rename(staged.c_str(), file.c_str()) != 0)
    return fail(errc::io_error,
                "cannot move " + staged + " over " + file + ": " + std::strerror(errno));
  return {};
}

std::expected<Daemon::ReloadLock, Reply> Daemon::lock_reload() {
  if (stopping_) return std::unexpected(Reply::error("stopping", "gwd is stopping"));
  if (reloading_)
    return std::unexpected(Reply::error("busy", "another reload or rollback is in progress"));
  return ReloadLock(reloading_);
}

void Daemon::stop(std::chrono::milliseconds timeout, bool now) {
  if (stopping_) return;
  stopping_ = true;
  sd_notify(0, "STOPPING=1");
  std::fprintf(stderr, "gwd: stopping: %s\n",
               now ? "now"
                   : ("draining (up to " + std::to_string(timeout.count() / 1000) + "s)").c_str());
  const auto deadline = now ? Clock::now() : Clock::now() + timeout;
  for (auto& w : workers_)
    w->drain(deadline);
}

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
    if (auto cidr = wire::Cidr::parse(c); !cidr) {
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
    // Port 0: the first worker got a port from the kernel; the others join it there
    // (SO_REUSEPORT), so every worker serves the one port gwd reports.
    if (i == 0) addrs = w->bound();
    workers.push_back(std::move(w));
  }
  std::vector<std::string> listeners;
  for (const auto& ep : addrs)
    listeners.push_back(endpoint_text(ep));

  net::io_context main;
  Daemon daemon(opts, main, workers, log.get(), *snap, listeners);
  const std::string control_path = opts.control.empty() ? kDefaultControlSocket : opts.control;
  ControlServer control(daemon, control_path, opts.control_group);
  bool control_on = true;
  if (auto r = control.open(); !r) {
    // A socket asked for explicitly must open; the default one may be out of reach (no /run/gw).
    if (!opts.control.empty() || r.error().code == errc::invalid_argument) {
      std::fprintf(stderr, "gwd: %s\n", r.error().message.c_str());
      return 1;
    }
    std::fprintf(stderr,
                 "gwd: warning: %s; running without a control socket (use --control PATH)\n",
                 r.error().message.c_str());
    control_on = false;
  }

  ::signal(SIGPIPE, SIG_IGN);
  for (auto& w : workers)
    w->start();
  if (control_on) control.start();

  std::string where;
  for (const auto& l : listeners)
    where += (where.empty() ? "" : ", ") + l;
  std::fprintf(
      stderr, "gwd: serving %s (generation 1, sha256 %s, %zu routes) on %s with %u worker%s%s\n",
      opts.table.c_str(), short_digest((*snap)->digest()).c_str(), (*snap)->config().routes.size(),
      where.c_str(), n, n == 1 ? "" : "s", control_on ? (", control " + control_path).c_str() : "");

  net::signal_set signals(main, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR1);
  std::function<void()> arm_signals = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        // Reload the current table file, like `gwctl reload`.
        sd_notify(0, "RELOADING=1");
        net::co_spawn(
            main,
            [&]() -> net::awaitable<void> {
              co_await daemon.reload(std::nullopt);
              sd_notify(0, "READY=1");
            },
            net::detached);
      } else if (sig == SIGUSR1) {
        auto r = daemon.reopen_logs();
        std::fprintf(stderr, "gwd: SIGUSR1: %s\n",
                     r.ok ? "access log reopened" : r.message.c_str());
      } else {
        std::fprintf(stderr, "gwd: %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        daemon.stop(opts.drain_timeout, false);
      }
      arm_signals();
    });
  };
  arm_signals();
  // The machine-readable announcement (README, "gwd"): one line per --listen, in order, with the
  // port actually bound, once gwd serves and its signal handlers are in place (so a SIGHUP sent on
  // seeing them reloads; it never finds the default action, which would end gwd). Scripts using
  // port 0 wait for these.
  for (const auto& l : listeners)
    std::printf("listening %s\n", l.c_str());
  std::fflush(stdout);
  sd_notifyf(0, "READY=1\nMAINPID=%lu", static_cast<unsigned long>(::getpid()));

  std::thread waiter([&] {
    for (auto& w : workers)
      w->join();
    net::post(main, [&] { main.stop(); });
  });
  main.run();
  waiter.join();
  control.close();
  std::fprintf(stderr, "gwd: stopped\n");
  return 0;
}

} // namespace gw::server
