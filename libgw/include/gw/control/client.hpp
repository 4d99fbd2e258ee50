// A blocking control-protocol client over a Unix socket (gwctl's side). Plain POSIX sockets with
// poll() for time limits: one request at a time, which is all a command-line tool needs.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "gw/core/error.hpp"

namespace gw::control {

enum class ClientErrc {
  ok = 0,
  unreachable = 1, // no socket, or nobody listening on it
  permission,      // the socket exists but this user may not connect
  timeout,
  protocol, // the answer is not a protocol message
};
const std::error_category& client_category() noexcept;
inline std::error_code make_error_code(ClientErrc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

class Client {
public:
  /// Connects to gwd's socket. A Unix socket connects at once or fails (nobody listening, no
  /// permission), so there is no time limit here; call() has one.
  static Result<Client> connect(const std::string& path);
  Client(Client&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Client& operator=(Client&&) = delete;
  ~Client();

  /// Sends one command and returns the whole response object ({"ok":..., ...}).
  Result<nlohmann::json> call(std::string_view cmd, const nlohmann::json& args,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60));

private:
  explicit Client(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::uint64_t next_id_ = 1;
  std::string buf_;
};

} // namespace gw::control

template <>
struct std::is_error_code_enum<gw::control::ClientErrc> : std::true_type {};
