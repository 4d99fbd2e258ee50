// The control protocol between gwctl and gwd: newline-delimited JSON over a Unix stream socket.
//
//   request:  {"v":1,"id":7,"cmd":"reload","args":{"path":"/etc/gw/routes.gwrt"}}
//   response: {"v":1,"id":7,"ok":true,"result":{...}}
//             {"v":1,"id":7,"ok":false,"error":{"code":"table.checksum_mismatch","message":"...",
//                                                "diagnostics":[...]}}
//
// One registry of commands (name, arguments, summary, privilege level) serves both sides: gwd
// dispatches on it and generates `help` from it; gwctl checks against it. Commands are
// HAProxy-style verb-object names. Asio-free. Read next: client.hpp, server/control_server.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gw::control {

inline constexpr int kVersion = 1;
inline constexpr std::size_t kMaxLine = 1 << 20; // longer request lines are refused

/// read: any user allowed to connect; admin: root or gwd's own user (checked with SO_PEERCRED).
enum class Level { read, admin };
std::string_view to_string(Level l) noexcept;

struct CommandInfo {
  std::string_view name;
  std::string_view args;    // argument summary, e.g. "{path?}"
  std::string_view summary; // one line
  Level level;
};

std::span<const CommandInfo> commands();
const CommandInfo* find_command(std::string_view name);

/// `$GW_SOCKET`, else /run/gw/gwd.sock.
std::string default_socket_path();

/// Building messages.
nlohmann::json make_request(std::uint64_t id, std::string_view cmd, nlohmann::json args);
nlohmann::json make_result(const nlohmann::json& id, nlohmann::json result);
nlohmann::json make_error(const nlohmann::json& id, std::string_view code, std::string_view message,
                          nlohmann::json diagnostics = nlohmann::json::array());

} // namespace gw::control
