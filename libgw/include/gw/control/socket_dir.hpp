// The directory that holds the control socket. gwd and `gwctl start` both prepare it with the
// same function, so the socket's group can reach it whichever of them creates it. Read next:
// protocol.hpp, server/control_server.
#pragma once

#include <string>
#include <sys/types.h>

#include "gw/core/error.hpp"

namespace gw::control {

/// The id of the group named `name`: what --control-group gives the socket and its directory.
/// Errors: errc::invalid_argument when there is no such group.
Result<gid_t> find_group(const std::string& name);

/// Creates the directory of `socket_path` when it is missing: mode 0750, and owned by `group`
/// when one is given, so that the group's members may enter it. An existing directory is left
/// as it is (it may be /run or a directory the administrator set up).
/// Errors: errc::invalid_argument for an unknown group; errc::io_error when the directory cannot
/// be created or given to the group.
Result<void> prepare_socket_dir(const std::string& socket_path, const std::string& group);

} // namespace gw::control
