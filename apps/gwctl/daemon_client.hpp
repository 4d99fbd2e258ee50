// gwctl's side of the control socket: connect, call, and map failures to exit codes and
// messages the same way for every command.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "gw/control/client.hpp"

namespace gwctl {

/// The outcome of one call: the result on success, else the exit code to return (the error has
/// been printed).
struct CallResult {
  std::optional<nlohmann::json> result;
  int exit_code = kOk;
  nlohmann::json error; // the daemon's error object when it refused
  explicit operator bool() const { return result.has_value(); }
};

/// Connects to `g.socket`, sends `cmd`, prints errors (with diagnostics) to stderr.
CallResult call_daemon(const Global& g, const std::string& cmd,
                       const nlohmann::json& args = nlohmann::json::object(),
                       std::chrono::milliseconds timeout = std::chrono::seconds(120));

/// Prints a daemon error object ({code, message, diagnostics}) to stderr.
void print_daemon_error(const Global& g, const nlohmann::json& err);

/// "3m12s" for durations in seconds.
std::string human_seconds(long long s);

} // namespace gwctl
