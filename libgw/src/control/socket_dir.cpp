#include "gw/control/socket_dir.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <grp.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

#include "gw/core/text.hpp"

namespace gw::control {

Result<gid_t> find_group(const std::string& name) {
  const group* g = ::getgrnam(name.c_str());
  if (!g) return fail(errc::invalid_argument, "--control-group: no group " + text::quote(name));
  return g->gr_gid;
}

Result<void> prepare_socket_dir(const std::string& socket_path, const std::string& group) {
  namespace fs = std::filesystem;
  std::optional<gid_t> gid;
  if (!group.empty()) {
    auto g = find_group(group);
    if (!g) return std::unexpected(g.error());
    gid = *g;
  }
  const fs::path p(socket_path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  std::error_code ec;
  if (fs::exists(dir, ec)) return {};
  fs::create_directories(dir, ec);
  if (ec)
    return fail(errc::io_error,
                "cannot create the control socket directory " + dir.string() + ": " + ec.message());
  // Set explicitly: the umask must not decide who may reach the socket.
  if (::chmod(dir.c_str(), 0750) != 0)
    return fail(errc::io_error,
                "cannot set the mode of " + dir.string() + ": " + std::strerror(errno));
  if (gid && ::chown(dir.c_str(), static_cast<uid_t>(-1), *gid) != 0)
    return fail(errc::io_error,
                "cannot give " + dir.string() + " to group " + group + ": " + std::strerror(errno));
  return {};
}

} // namespace gw::control
