// Private: the daemon's main-thread state (table generations, overrides, workers) and the
// operations the control socket and signals invoke. Main thread only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/sha256.hpp"
#include "gw/observe/access_log.hpp"
#include "gw/observe/stats.hpp"
#include "gw/runtime/overrides.hpp"
#include "gw/runtime/snapshot.hpp"
#include "gw/server/daemon.hpp"
#include "worker.hpp"

namespace gw::server {

/// What a control command answers: a result, or an error with optional diagnostics.
struct Reply {
  bool ok = true;
  nlohmann::json result = nlohmann::json::object();
  std::string code, message;
  nlohmann::json diagnostics = nlohmann::json::array();
  /// Run by the control session once this reply is written (`stop` answers before it drains).
  std::function<void()> after_reply;

  static Reply error(std::string code, std::string message,
                     nlohmann::json diags = nlohmann::json::array()) {
    Reply r;
    r.ok = false;
    r.code = std::move(code);
    r.message = std::move(message);
    r.diagnostics = std::move(diags);
    return r;
  }
};

class Daemon {
public:
  Daemon(const DaemonOptions& opts, boost::asio::io_context& main,
         std::vector<std::unique_ptr<Worker>>& workers, observe::LogFile* log,
         runtime::SnapshotPtr first, std::vector<std::string> listeners);
  ~Daemon();

  boost::asio::io_context& main() noexcept { return main_; }
  const DaemonOptions& options() const noexcept { return opts_; }
  const runtime::SnapshotPtr& current() const noexcept { return current_; }

  /// Loads `path` (default: the current table file), verifies it, publishes it to every worker
  /// and answers once all of them serve it. An identical table is a no-op; a bad one changes
  /// nothing. Reloads are serialised: a second one while one runs gets `busy`. With `install`,
  /// `path` is a staged table that, once it loads, replaces the current table file (and is
  /// served from there): the file changes only when the table is served, never when a reload
  /// is refused.
  boost::asio::awaitable<Reply> reload(std::optional<std::string> path, bool install = false);
  /// Loads and verifies without publishing; serialised with reloads (`busy` while one runs).
  boost::asio::awaitable<Reply> check(std::string path);
  boost::asio::awaitable<Reply> rollback();
  boost::asio::awaitable<observe::StatsView> stats();
  Reply set_endpoint(const std::string& upstream, const std::string& address,
                     runtime::EndpointState st);
  const runtime::Overrides& overrides() const noexcept { return overrides_; }
  Reply reopen_logs();
  nlohmann::json info() const;
  /// Starts a drain; the process exits once the workers stopped.
  void stop(std::chrono::milliseconds timeout, bool now);

private:
  /// Marks a reload or rollback as running for as long as it lives: they are serialised.
  class ReloadLock {
  public:
    explicit ReloadLock(bool& flag) : flag_(&flag) { *flag_ = true; }
    ReloadLock(ReloadLock&& o) noexcept : flag_(std::exchange(o.flag_, nullptr)) {}
    ReloadLock& operator=(ReloadLock&&) = delete;
    ~ReloadLock() {
      if (flag_) *flag_ = false;
    }

  private:
    bool* flag_;
  };
  /// The lock, or the reply refusing a reload or rollback: gwd is stopping, or one already runs.
  std::expected<ReloadLock, Reply> lock_reload();
  boost::asio::awaitable<void> publish(runtime::SnapshotPtr s);
  /// Snapshot::load on the loader thread; resumes on the main thread with its result.
  boost::asio::awaitable<Result<runtime::SnapshotPtr>>
  load(std::string file, std::uint64_t generation, std::string source = {});
  /// Moves a staged table over the table file (reload with install).
  static Result<void> install_staged(const std::string& staged, const std::string& file);

  const DaemonOptions& opts_;
  boost::asio::io_context& main_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  observe::LogFile* log_;
  runtime::SnapshotPtr current_, previous_;
  std::string table_path_;
  std::uint64_t last_generation_ = 1;
  runtime::Overrides overrides_;
  std::vector<std::string> listeners_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool reloading_ = false;
  bool stopping_ = false;
  nlohmann::json last_reload_ = nullptr;
  std::thread loader_; // the last reload's Snapshot::load; joined before the next and at exit
  /// What is served and why (startup, reload, rollback): `served` in `show info`.
  nlohmann::json served_;
  /// A table file a rollback could not write back: it still holds the table rolled back from.
  struct StaleFile {
    std::string path;
    Sha256 sha256;            // of the file's bytes then
    std::uint64_t generation; // the rollback's generation
    std::string reason;       // why the file could not be written
  };
  std::optional<StaleFile> stale_file_;
};

/// The control socket: NDJSON over a Unix stream socket, on the main io_context.
class ControlServer {
public:
  ControlServer(Daemon& d, std::string path, std::string group);
  ~ControlServer();
  /// Creates the directory (0750) and the socket (0660); refuses when another gwd answers there.
  Result<void> open();
  void start();
  void close();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace gw::server
