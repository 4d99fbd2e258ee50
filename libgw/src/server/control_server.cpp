// The control socket: newline-delimited JSON over a Unix stream socket, served on the main
// io_context (never on a worker), so nothing a control client does can slow traffic down.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon_state.hpp"
#include "gw/control/protocol.hpp"
#include "gw/control/socket_dir.hpp"
#include "gw/core/text.hpp"
#include "gw/report/describe.hpp"
#include "gw/router/explain.hpp"

namespace gw::server {

namespace net = boost::asio;
using local = net::local::stream_protocol;
using Json = nlohmann::json;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);
constexpr auto kIdle = std::chrono::seconds(60);

namespace {

std::string arg_string(const Json& args, const char* key, std::string fallback = {}) {
  auto it = args.find(key);
  return it != args.end() && it->is_string() ? it->get<std::string>() : fallback;
}

/// One request line: the command to run, or the error to answer instead.
struct Call {
  Json id;
  std::string cmd;
  Json args = Json::object();
  Json error; // null when the command may run
};

/// Parses a request line and checks the command exists and that this peer may run it.
Call parse_request(const std::string& line, bool admin) {
  Call c;
  Json req = Json::parse(line, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    c.error = control::make_error(nullptr, "bad_json", "not a JSON object");
    return c;
  }
  c.id = req.value("id", Json());
  if (req.contains("v") && req["v"] != control::kVersion) {
    c.error = control::make_error(c.id, "unsupported_version", "this gwd speaks version 1");
    return c;
  }
  c.cmd = req.value("cmd", std::string());
  if (req.contains("args") && req["args"].is_object()) c.args = std::move(req["args"]);
  const control::CommandInfo* info = control::find_command(c.cmd);
  if (!info) {
    std::vector<std::string> names;
    for (const auto& cmd : control::commands())
      names.emplace_back(cmd.name);
    std::string msg = "unknown command " + text::quote(c.cmd);
    if (auto near = text::suggest(c.cmd, names))
      msg += "; did you mean " + text::quote(*near) + "?";
    c.error = control::make_error(c.id, "unknown_command", msg + " (see \"help\")");
    return c;
  }
  if (info->level == control::Level::admin && !admin)
    c.error = control::make_error(c.id, "permission_denied",
                                  text::quote(c.cmd) + " needs root or gwd's own user (uid " +
                                      std::to_string(::geteuid()) + ")");
  return c;
}

} // namespace

struct ControlServer::Impl {
  using Handler = std::function<net::awaitable<Reply>(const Json& args)>;

  Daemon& d;
  std::string path, group;
  local::acceptor acceptor;
  std::map<std::string, Handler, std::less<>> handlers;
  bool open = false;

  Impl(Daemon& daemon, std::string p, std::string g)
      : d(daemon), path(std::move(p)), group(std::move(g)), acceptor(daemon.main()) {
    register_handlers();
    // One registry: every command gwctl may send has a handler here, and nothing else does.
    for (const auto& c : control::commands())
      if (!handlers.count(c.name)) std::abort();
  }

  void register_handlers() {
    auto sync = [](std::function<Reply(const Json&)> f) -> Handler {
      return [f = std::move(f)](const Json& a) -> net::awaitable<Reply> { co_return f(a); };
    };
    handlers["help"] = sync([](const Json&) {
      Reply r;
      r.result = Json::array();
      for (const auto& c : control::commands())
        r.result.push_back({{"command", c.name},
                            {"args", c.args},
                            {"summary", c.summary},
                            {"level", control::to_string(c.level)}});
      return r;
    });
    handlers["ping"] = sync([](const Json&) {
      Reply r;
      r.result = {{"pong", true}, {"version", GW_VERSION}, {"pid", ::getpid()}};
      return r;
    });
    handlers["show info"] = sync([this](const Json&) {
      Reply r;
      r.result = d.info();
      r.result["control"] = path;
      return r;
    });
    handlers["show routes"] = sync([this](const Json&) {
      const auto& cfg = d.current()->config();
      Reply r;
      r.result = {{"generation", d.current()->generation()}, {"routes", Json::array()}};
      for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
        auto j = report::route_json(cfg, cfg.routes[i]);
        j["precedence"] = i + 1;
        r.result["routes"].push_back(std::move(j));
      }
      return r;
    });
    handlers["show upstreams"] = [this](const Json&) -> net::awaitable<Reply> {
      const auto view = co_await d.stats();
      const auto& cfg = d.current()->config();
      Reply r;
      r.result = {{"generation", d.current()->generation()}, {"upstreams", Json::array()}};
      for (const auto& u : cfg.upstreams) {
        Json j = report::upstream_json(cfg, u);
        Json eps = Json::array();
        for (const auto& e : u.endpoints) {
          // What the workers report, or an endpoint no worker has used yet.
          observe::EndpointView st;
          st.upstream = u.name;
          st.address = e.address();
          st.weight = e.weight;
          st.state = "ready";
          for (const auto& v : view.endpoints)
            if (v.upstream == u.name && v.address == st.address) st = v;
          eps.push_back({{"address", st.address},
                         {"weight", st.weight},
                         {"state", st.state},
                         {"active", st.active},
                         {"idle", st.idle},
                         {"requests", st.requests},
                         {"failures", st.failures}});
        }
        j["endpoints"] = std::move(eps);
        r.result["upstreams"].push_back(std::move(j));
      }
      co_return r;
    };
    handlers["show stats"] = [this](const Json&) -> net::awaitable<Reply> {
      const auto view = co_await d.stats();
      Reply r;
      Json routes = Json::object(), ups = Json::object();
      for (const auto& [k, c] : view.routes)
        routes[k] = c.to_json();
      for (const auto& [k, c] : view.upstreams)
        ups[k] = c.to_json();
      r.result = {{"generation", d.current()->generation()},
                  {"connections", view.connections},
                  {"rate_limit_store_errors", view.rate_limit_store_errors},
                  {"ext_auth_errors", view.ext_auth_errors},
                  {"lua_errors", view.lua_errors},
                  {"routes", routes},
                  {"upstreams", ups},
                  {"unrouted", view.unrouted.to_json()}};
      co_return r;
    };
    handlers["show overrides"] = sync([this](const Json&) {
      Reply r;
      r.result = Json::array();
      for (const auto& [k, st] : d.overrides())
        r.result.push_back(
            {{"upstream", k.first}, {"address", k.second}, {"state", runtime::to_string(st)}});
      return r;
    });
    handlers["explain"] = sync([this](const Json& a) {
      const std::string method = arg_string(a, "method", "GET");
      const std::string url = arg_string(a, "url");
      if (url.empty()) return Reply::error("bad_args", "explain needs a url");
      std::vector<std::pair<std::string, std::string>> headers;
      if (auto it = a.find("headers"); it != a.end() && it->is_object())
        for (const auto& [k, v] : it->items())
          if (v.is_string()) headers.emplace_back(k, v.get<std::string>());
      router::SampleRequest sample;
      if (auto why = sample.read(method, url, headers))
        return sample.rejected()
                   ? Reply::error("bad_request", "the target would be refused (400): " + *why)
                   : Reply::error("bad_args", *why);
      Reply r;
      r.result =
          report::explain_json(d.current()->routes(), sample.request(), method, sample.host());
      r.result["generation"] = d.current()->generation();
      return r;
    });
    handlers["check"] = [this](const Json& a) -> net::awaitable<Reply> {
      const std::string p = arg_string(a, "path");
      if (p.empty()) co_return Reply::error("bad_args", "check needs a path");
      co_return co_await d.check(p);
    };
    handlers["reload"] = [this](const Json& a) -> net::awaitable<Reply> {
      const std::string p = arg_string(a, "path");
      const bool install = a.is_object() && a.value("install", false);
      if (install && p.empty()) co_return Reply::error("bad_args", "install needs a path");
      std::optional<std::string> file;
      if (!p.empty()) file = p;
      co_return co_await d.reload(std::move(file), install);
    };
    handlers["rollback"] = [this](const Json&) -> net::awaitable<Reply> {
      co_return co_await d.rollback();
    };
    handlers["set endpoint"] = sync([this](const Json& a) {
      auto st = runtime::parse_endpoint_state(arg_string(a, "state"));
      if (!st) return Reply::error("bad_args", "state must be ready, drain or maint");
      return d.set_endpoint(arg_string(a, "upstream"), arg_string(a, "address"), *st);
    });
    handlers["reopen logs"] = sync([this](const Json&) { return d.reopen_logs(); });
    handlers["stop"] = sync([this](const Json& a) {
      const auto ms =
          a.value("timeout_ms", static_cast<std::int64_t>(d.options().drain_timeout.count()));
      const bool now = a.value("now", false);
      // Answer first: the drain starts once this reply is written.
      Reply r;
      r.result = {{"stopping", true}, {"pid", ::getpid()}, {"timeout_ms", ms}, {"now", now}};
      r.after_reply = [this, ms, now] { d.stop(std::chrono::milliseconds(ms), now); };
      return r;
    });
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      net::co_spawn(d.main(), serve(std::move(sock)), net::detached);
    }
  }

  net::awaitable<void> serve(local::socket accepted) {
    // Shared with the idle watchdog, which may still be queued to run after this coroutine ends.
    auto sock = std::make_shared<local::socket>(std::move(accepted));
    ucred cred{};
    socklen_t len = sizeof cred;
    const bool known =
        ::getsockopt(sock->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
    const bool admin = known && (cred.uid == 0 || cred.uid == ::geteuid());
    // Slow or silent clients are closed after a minute without a request. The minute counts from
    // the last reply and never runs while a command does: a long reload is not cut off.
    struct Activity {
      std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
      bool busy = false; // a command is running
    };
    auto activity = std::make_shared<Activity>();
    auto idle = std::make_shared<net::steady_timer>(d.main());
    net::co_spawn(
        d.main(),
        [idle, activity, sock]() -> net::awaitable<void> {
          for (;;) {
            const auto now = std::chrono::steady_clock::now();
            if (!activity->busy && now >= activity->last + kIdle) {
              boost::system::error_code ignored;
              sock->close(ignored);
              co_return;
            }
            idle->expires_at(activity->busy ? now + kIdle : activity->last + kIdle);
            auto [ec] = co_await idle->async_wait(kTuple);
            if (ec) co_return; // the session ended
          }
        },
        net::detached);

    std::string buf;
    for (;;) {
      auto [ec, n] = co_await net::async_read_until(
          *sock, net::dynamic_buffer(buf, control::kMaxLine + 1), '\n', kTuple);
      if (ec == net::error::not_found) {
        Json out = control::make_error(nullptr, "line_too_long",
                                       "request lines are limited to " +
                                           std::to_string(control::kMaxLine) + " bytes");
        co_await write(*sock, std::move(out));
        break;
      }
      if (ec) break;
      activity->last = std::chrono::steady_clock::now();
      const std::string line = buf.substr(0, n - 1);
      buf.erase(0, n);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      Call call = parse_request(line, admin);
      Reply r;
      if (call.error.is_null()) {
        activity->busy = true;
        try {
          r = co_await handlers.find(call.cmd)->second(call.args);
        } catch (const std::exception& e) {
          // A bad argument type (nlohmann throws) must not end the session, let alone gwd.
          r = Reply::error("internal", "while running " + text::quote(call.cmd) + ": " + e.what());
        }
        activity->busy = false;
        activity->last = std::chrono::steady_clock::now();
      }
      Json out;
      if (!call.error.is_null())
        out = std::move(call.error);
      else if (r.ok)
        out = control::make_result(call.id, std::move(r.result));
      else
        out = control::make_error(call.id, r.code, r.message, std::move(r.diagnostics));
      co_await write(*sock, std::move(out));
      activity->last = std::chrono::steady_clock::now();
      if (r.after_reply) r.after_reply();
    }
    idle->cancel();
    boost::system::error_code ignored;
    sock->close(ignored);
  }

  // Callers pass a named value: GCC 12 mishandles non-trivial temporaries inside a co_await
  // expression (they can be destroyed twice).
  static net::awaitable<void> write(local::socket& sock, Json msg) {
    const std::string line = msg.dump() + "\n";
    co_await net::async_write(sock, net::buffer(line), kTuple);
  }
};

ControlServer::ControlServer(Daemon& d, std::string path, std::string group)
    : impl_(std::make_unique<Impl>(d, std::move(path), std::move(group))) {}

ControlServer::~ControlServer() {
  close();
}

Result<void> ControlServer::open() {
  namespace fs = std::filesystem;
  const std::string& path = impl_->path;
  const fs::path p(path);
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    return fail(errc::invalid_argument, "control socket path too long: " + path);
  if (auto r = control::prepare_socket_dir(path, impl_->group); !r) return r;
  std::error_code ec;
  if (fs::exists(p, ec)) {
    // A socket that answers belongs to a running gwd: never steal it. One that does not is stale.
    local::socket probe(impl_->d.main());
    boost::system::error_code cec;
    probe.connect(local::endpoint(path), cec);
    if (!cec) return fail(errc::invalid_argument, "another gwd is already running on " + path);
    fs::remove(p, ec);
  }
  boost::system::error_code bec;
  impl_->acceptor.open(local(), bec);
  if (!bec) impl_->acceptor.bind(local::endpoint(path), bec);
  if (!bec) impl_->acceptor.listen(64, bec);
  if (bec)
    return fail(errc::io_error, "cannot open the control socket " + path + ": " + bec.message());
  ::chmod(path.c_str(), 0660);
  if (!impl_->group.empty()) {
    auto gid = control::find_group(impl_->group);
    if (!gid) return std::unexpected(gid.error());
    if (::chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0)
      return fail(errc::io_error, "cannot give " + path + " to group " + impl_->group + ": " +
                                      std::strerror(errno));
  }
  impl_->open = true;
  return {};
}

void ControlServer::start() {
  net::co_spawn(impl_->d.main(), impl_->accept_loop(), net::detached);
}

void ControlServer::close() {
  if (!impl_ || !impl_->open) return;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  ::unlink(impl_->path.c_str());
  impl_->open = false;
}

} // namespace gw::server
