#include "gw/control/protocol.hpp"

#include <array>
#include <cstdlib>

namespace gw::control {
namespace {

constexpr std::array kCommands = {
    CommandInfo{"help", "", "list the commands, their arguments and levels", Level::read},
    CommandInfo{"ping", "", "check that gwd answers", Level::read},
    CommandInfo{"show info", "",
                "version, pid, uptime, workers, listeners, table, generation, last reload",
                Level::read},
    CommandInfo{"show routes", "", "routes of the running table, in precedence order", Level::read},
    CommandInfo{"show upstreams", "",
                "upstreams with their endpoints: state, requests in flight, pooled connections",
                Level::read},
    CommandInfo{"show stats", "", "counters and latency per route and upstream", Level::read},
    CommandInfo{"show overrides", "", "endpoint states set with `set endpoint`", Level::read},
    CommandInfo{"explain", "{method, url, headers?}",
                "the routing decision of the running table for one request", Level::read},
    CommandInfo{"check", "{path}", "load and verify a table without serving it", Level::admin},
    CommandInfo{"reload", "{path?, install?}",
                "serve a table (default: the current file) on every worker, then answer; "
                "install: the table at path then replaces the current file",
                Level::admin},
    CommandInfo{"rollback", "", "serve the previous table generation again", Level::admin},
    CommandInfo{"set endpoint", "{upstream, address, state: ready|drain|maint}",
                "change an endpoint's state; survives reloads", Level::admin},
    CommandInfo{"reopen logs", "", "reopen the access log file (after rotation)", Level::admin},
    CommandInfo{"stop", "{timeout_ms?, now?}",
                "stop accepting, let in-flight requests finish, exit", Level::admin},
};

} // namespace

std::string_view to_string(Level l) noexcept {
  return l == Level::admin ? "admin" : "read";
}

std::span<const CommandInfo> commands() {
  return kCommands;
}

const CommandInfo* find_command(std::string_view name) {
  for (const auto& c : kCommands)
    if (c.name == name) return &c;
  return nullptr;
}

std::string default_socket_path() {
  if (const char* s = std::getenv("GW_SOCKET"); s && *s) return s;
  return "/run/gw/gwd.sock";
}

nlohmann::json make_request(std::uint64_t id, std::string_view cmd, nlohmann::json args) {
  return {{"v", kVersion}, {"id", id}, {"cmd", cmd}, {"args", std::move(args)}};
}

nlohmann::json make_result(const nlohmann::json& id, nlohmann::json result) {
  return {{"v", kVersion}, {"id", id}, {"ok", true}, {"result", std::move(result)}};
}

nlohmann::json make_error(const nlohmann::json& id, std::string_view code, std::string_view message,
                          nlohmann::json diagnostics) {
  return {
      {"v", kVersion},
      {"id", id},
      {"ok", false},
      {"error", {{"code", code}, {"message", message}, {"diagnostics", std::move(diagnostics)}}}};
}

} // namespace gw::control
