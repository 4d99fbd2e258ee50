// gwctl start / stop: run gwd in the background on a control socket, and stop it gracefully.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "commands.hpp"
#include "daemon_client.hpp"
#include "gw/control/socket_dir.hpp"
#include "gw/core/units.hpp"
#include "gw/load/load.hpp"
#include "gw/table/codec.hpp"
#include "output.hpp"

namespace gwctl {

using Json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// gwd next to gwctl (an install), in the build tree's sibling directory, or on $PATH.
std::string find_gwd(const std::string& requested) {
  if (!requested.empty()) return requested;
  if (const char* env = std::getenv("GWD"); env && *env) return env;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& c :
         {self.parent_path() / "gwd", self.parent_path().parent_path() / "gwd" / "gwd"})
      if (::access(c.c_str(), X_OK) == 0) return c.string();
  }
  return "gwd";
}

bool answers(const std::string& socket, Json* info = nullptr) {
  auto c = gw::control::Client::connect(socket);
  if (!c) return false;
  auto r = c->call("show info", Json::object(), 2s);
  if (!r || !(*r)["ok"].get<bool>()) return false;
  if (info) *info = (*r)["result"];
  return true;
}

/// An exited process whose parent has not reaped it yet (gwd's parent is init after `start`).
bool zombie(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

std::string tail(const std::string& path, std::size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string l; std::getline(in, l);)
    all.push_back(l);
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += "  " + all[i] + "\n";
  return out;
}

} // namespace

int run_start(const Global& g, const StartOptions& o) {
  const Style est = style_for(stderr, g.color);
  Json info;
  if (answers(g.socket, &info)) {
    std::fprintf(stderr,
                 "%serror%s: gwd is already running on %s (pid %s); stop it first (gwctl stop)\n",
                 est.red(), est.reset(), g.socket.c_str(), info["pid"].dump().c_str());
    return kRefused;
  }
  const fs::path sock(g.socket);
  const fs::path dir = sock.parent_path().empty() ? fs::path(".") : sock.parent_path();
  // The same directory gwd would make: 0750, and the socket's group when --control-group is set.
  if (auto r = gw::control::prepare_socket_dir(g.socket, o.control_group); !r) {
    std::fprintf(stderr, "%serror%s: %s\n", est.red(), est.reset(), r.error().message.c_str());
    return r.error().code == gw::errc::invalid_argument ? kUsage : kIoError;
  }

  // The table: given, or compiled from the specs next to the socket.
  std::string table;
  if (o.inputs.size() == 1 && gw::load::is_table_file(o.inputs[0])) {
    table = fs::absolute(o.inputs[0]).string();
  } else {
    auto loaded = gw::load::load(o.inputs);
    print_diagnostics(stderr, loaded.diags, &loaded.sources, est);
    if (!loaded.ok()) {
      std::fprintf(stderr, "%serror%s: %s; gwd not started\n", est.red(), est.reset(),
                   summarize(loaded.diags).c_str());
      return kFailed;
    }
    table = (fs::absolute(dir) / (sock.stem().string() + ".gwrt")).string();
    if (auto w = gw::table::write_file(table, gw::table::encode(*loaded.config)); !w) {
      std::fprintf(stderr, "%serror%s: %s\n", est.red(), est.reset(), w.error().message.c_str());
      return kIoError;
    }
  }

  const std::string gwd = find_gwd(o.gwd);
  const std::string log = (fs::absolute(dir) / (sock.stem().string() + ".log")).string();
  std::vector<std::string> argv{gwd, "--table", table, "--control", fs::absolute(sock).string()};
  const std::vector<std::string> listen =
      o.listen.empty() ? std::vector<std::string>{"127.0.0.1:8080"} : o.listen;
  for (const auto& l : listen)
    argv.insert(argv.end(), {"--listen", l});
  if (o.workers) argv.insert(argv.end(), {"--workers", std::to_string(o.workers)});
  if (!o.access_log.empty()) argv.insert(argv.end(), {"--access-log", o.access_log});
  for (const auto& t : o.trusted_proxies)
    argv.insert(argv.end(), {"--trusted-proxy", t});
  if (!o.control_group.empty()) argv.insert(argv.end(), {"--control-group", o.control_group});

  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "%serror%s: fork: %s\n", est.red(), est.reset(), std::strerror(errno));
    return kFailed;
  }
  if (pid == 0) {
    // The daemon: its own session, output to the log next to the socket.
    ::setsid();
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "gwctl: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }

  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(o.wait_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::fprintf(stderr, "%serror%s: gwd exited (%s %d) before serving; its log (%s):\n%s",
                   est.red(), est.reset(), WIFEXITED(status) ? "status" : "signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log.c_str(),
                   tail(log, 10).c_str());
      return kFailed;
    }
    if (answers(g.socket, &info)) {
      std::string where;
      for (const auto& l : info["listeners"])
        where += (where.empty() ? "" : ", ") + l.get<std::string>();
      std::printf("gwd started: pid %d, socket %s, listening on %s\n", pid, g.socket.c_str(),
                  where.c_str());
      std::printf("table %s, generation %s, sha256 %s, %s routes; log %s\n", table.c_str(),
                  info["table"]["generation"].dump().c_str(),
                  info["table"]["sha256"].get<std::string>().substr(0, 16).c_str(),
                  info["table"]["routes"].dump().c_str(), log.c_str());
      return kOk;
    }
    std::this_thread::sleep_for(50ms);
  }
  ::kill(pid, SIGTERM);
  std::fprintf(
      stderr, "%serror%s: gwd did not answer on %s within %.0fs; stopped it. Its log (%s):\n%s",
      est.red(), est.reset(), g.socket.c_str(), o.wait_s, log.c_str(), tail(log, 10).c_str());
  return kFailed;
}

int run_stop(const Global& g, const StopOptions& o) {
  const Style est = style_for(stderr, g.color);
  auto timeout = gw::units::parse_duration(o.timeout);
  if (!timeout) {
    std::fprintf(stderr, "%serror%s: --timeout %s: %s\n", est.red(), est.reset(), o.timeout.c_str(),
                 timeout.error().message.c_str());
    return kUsage;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call_daemon(g, "stop", {{"timeout_ms", timeout->count()}, {"now", o.now}});
  if (!r) return r.exit_code;
  const pid_t pid = (*r.result)["pid"].get<pid_t>();
  // Wait for the process to finish its drain and exit.
  const auto deadline = t0 + *timeout + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if ((::kill(pid, 0) != 0 && errno == ESRCH) || zombie(pid)) {
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - t0);
      std::printf("gwd stopped (pid %d) after %.1f s\n", pid,
                  static_cast<double>(took.count()) / 1000.0);
      return kOk;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::fprintf(stderr, "%serror%s: gwd (pid %d) is still running after the drain timeout\n",
               est.red(), est.reset(), pid);
  return kFailed;
}

} // namespace gwctl
