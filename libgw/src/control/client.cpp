#include "gw/control/client.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gw/control/protocol.hpp"

namespace gw::control {
namespace {

class ClientCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "control"; }
  std::string message(int ev) const override {
    switch (static_cast<ClientErrc>(ev)) {
    case ClientErrc::ok:
      return "ok";
    case ClientErrc::unreachable:
      return "unreachable";
    case ClientErrc::permission:
      return "permission";
    case ClientErrc::timeout:
      return "timeout";
    case ClientErrc::protocol:
      return "protocol";
    }
    return "unknown";
  }
};

bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

} // namespace

const std::error_category& client_category() noexcept {
  static const ClientCategory cat;
  return cat;
}

Result<Client> Client::connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return fail(ClientErrc::unreachable, "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(ClientErrc::unreachable, std::string("socket: ") + std::strerror(errno));
  Client c(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == EACCES || e == EPERM)
      return fail(ClientErrc::permission,
                  "no permission to connect to " + path + " (" + std::strerror(e) + ")");
    return fail(ClientErrc::unreachable,
                "cannot connect to " + path + ": " + std::strerror(e) +
                    (e == ENOENT || e == ECONNREFUSED ? " (is gwd running?)" : ""));
  }
  return c;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Result<nlohmann::json> Client::call(std::string_view cmd, const nlohmann::json& args,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::uint64_t id = next_id_++;
  const std::string line = make_request(id, cmd, args).dump() + "\n";
  std::size_t off = 0;
  while (off < line.size()) {
    if (!wait_fd(fd_, POLLOUT, deadline))
      return fail(ClientErrc::timeout, "timed out sending to gwd");
    const ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return fail(ClientErrc::unreachable, std::string("gwd went away: ") + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  for (;;) {
    const auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      const std::string resp = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      auto j = nlohmann::json::parse(resp, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
        return fail(ClientErrc::protocol, "gwd sent something that is not a control response");
      if (j.value("id", nlohmann::json()) != nlohmann::json(id)) continue; // not ours
      return j;
    }
    if (buf_.size() > kMaxLine) return fail(ClientErrc::protocol, "response line too long");
    if (!wait_fd(fd_, POLLIN, deadline))
      return fail(ClientErrc::timeout, "timed out waiting for gwd");
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n == 0) return fail(ClientErrc::unreachable, "gwd closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return fail(ClientErrc::unreachable,
                  std::string("reading from gwd: ") + std::strerror(errno));
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

} // namespace gw::control
