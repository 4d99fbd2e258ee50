#include "gw/core/file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw/core/units.hpp"

namespace gw::file {
namespace {

std::string os_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}
std::string os_error(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

/// Why `path` cannot be created, in terms of the path asked for (never the temporary file).
std::string create_error(const std::string& path) {
  const int err = errno;
  const std::string dir = parent_dir(path);
  if (err == ENOENT) return "cannot write " + path + ": directory " + dir + " does not exist";
  if (err == ENOTDIR) return "cannot write " + path + ": " + dir + " is not a directory";
  return "cannot write " + path + ": " + std::strerror(err);
}

} // namespace

Result<std::string> read_all(const std::string& path, std::uint64_t max_bytes) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    if (errno == ENOENT) return fail(errc::not_found, "no such file");
    return fail(errc::io_error, os_error("cannot open"));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return fail(errc::io_error, os_error("cannot stat"));
  if (S_ISDIR(st.st_mode)) return fail(errc::io_error, "is a directory");
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return fail(errc::too_large, std::to_string(st.st_size) + " bytes is larger than the " +
                                     units::format_size(max_bytes) + " limit");
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errc::io_error, os_error("cannot read"));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    // Pipes and devices have no size up front; enforce the cap as we go.
    if (out.size() > max_bytes)
      return fail(errc::too_large, "larger than the " + units::format_size(max_bytes) + " limit");
  }
  return out;
}

Result<void> write_atomic(const std::string& path, std::span<const unsigned char> data) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    Fd f;
    f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f.fd < 0) return fail(errc::io_error, create_error(path));
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(f.fd, data.data() + off, data.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        const auto err = fail(errc::io_error, os_error("cannot write", path));
        ::unlink(tmp.c_str());
        return err;
      }
      off += static_cast<std::size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      const auto err = fail(errc::io_error, os_error("cannot write", path));
      ::unlink(tmp.c_str());
      return err;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const auto err = fail(errc::io_error, os_error("cannot rename to", path));
    ::unlink(tmp.c_str());
    return err;
  }
  // Make the rename itself durable.
  Fd d;
  d.fd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) ::fsync(d.fd);
  return {};
}

} // namespace gw::file
