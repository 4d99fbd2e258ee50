#include "gw/observe/access_log.hpp"

#include <algorithm>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include "gw/uri/normalize.hpp"

namespace gw::observe {
namespace {

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  json_string(out, value);
}

void field(std::string& out, std::string_view name, std::uint64_t value) {
  out += ",\"";
  out += name;
  out += "\":";
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(value));
  out.append(buf, static_cast<std::size_t>(n));
}

bool secret_name(std::string_view name) {
  static constexpr std::array<std::string_view, 18> kSecret = {
      "key",           "api_key", "apikey",        "token",         "access_token", "id_token",
      "refresh_token", "secret",  "client_secret", "password",      "passwd",       "pwd",
      "signature",     "sig",     "auth",          "authorization", "session",      "sessionid"};
  std::string lower(name.substr(0, 32));
  for (auto& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  for (auto s : kSecret)
    if (lower == s) return true;
  return false;
}

/// "2026-11-27T21:17:13.123456Z", cached per second.
void timestamp(std::string& out, std::int64_t us) {
  thread_local std::int64_t cached_sec = -1;
  thread_local char cached[24];
  const std::int64_t sec = us / 1'000'000;
  if (sec != cached_sec) {
    const std::time_t t = static_cast<std::time_t>(sec);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_sec = sec;
  }
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>(us % 1'000'000));
  out += cached;
  out += frac;
}

} // namespace

void append_redacted_query(std::string_view q, std::string& out,
                           std::span<const std::string> also) {
  std::string name; // decoded, as policies read names: "api%5Fkey" is "api_key"
  bool first = true;
  uri::for_each_raw_param(q, name, [&](std::string_view pair, std::string_view n) {
    if (!first) out += '&';
    first = false;
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos &&
        (secret_name(n) || std::find(also.begin(), also.end(), n) != also.end())) {
      out += pair.substr(0, eq + 1);
      out += "REDACTED";
    } else {
      out += pair;
    }
  });
}

void format_access_record(const AccessRecord& r, std::string& out) {
  out += "{\"time\":\"";
  timestamp(out, r.time_us);
  out += '"';
  field(out, "request_id", r.request_id);
  field(out, "worker", r.worker);
  field(out, "generation", r.generation);
  field(out, "client", r.client);
  field(out, "method", r.method);
  field(out, "host", r.host);
  field(out, "path", r.path);
  if (!r.query.empty()) {
    std::string q;
    append_redacted_query(r.query, q, r.secret_params);
    field(out, "query", q);
  }
  field(out, "status", r.status);
  field(out, "route", r.route);
  if (!r.consumer.empty()) field(out, "consumer", r.consumer);
  field(out, "upstream", r.upstream);
  field(out, "endpoint", r.endpoint);
  if (r.upstream_status) field(out, "upstream_status", r.upstream_status);
  if (r.attempts) field(out, "attempts", r.attempts);
  field(out, "bytes_in", r.bytes_in);
  field(out, "bytes_out", r.bytes_out);
  field(out, "duration_us", r.duration_us);
  field(out, "upstream_us", r.upstream_us);
  if (!r.error.empty()) field(out, "error", r.error);
  if (!r.error_detail.empty()) field(out, "error_detail", r.error_detail);
  out += "}\n";
}

Result<std::unique_ptr<LogFile>> LogFile::open(const std::string& path) {
  int fd = -1;
  if (path == "-") {
    fd = ::dup(STDOUT_FILENO);
  } else {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  }
  if (fd < 0)
    return fail(errc::io_error, "cannot open access log " + path + ": " + std::strerror(errno));
  return std::unique_ptr<LogFile>(new LogFile(path, fd));
}

LogFile::~LogFile() {
  const int fd = fd_.load();
  if (fd >= 0) ::close(fd);
}

void LogFile::write(std::string_view lines) noexcept {
  const int fd = fd_.load(std::memory_order_acquire);
  std::size_t off = 0;
  while (off < lines.size()) {
    const ssize_t n = ::write(fd, lines.data() + off, lines.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return; // a full disk must not stop traffic; the lines are dropped
    }
    off += static_cast<std::size_t>(n);
  }
}

Result<void> LogFile::reopen() {
  if (path_ == "-") return {};
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return fail(errc::io_error, "cannot reopen access log " + path_ + ": " + std::strerror(errno));
  const int old = fd_.exchange(fd, std::memory_order_acq_rel);
  // A worker may be writing to the old descriptor right now; give it a moment before closing.
  // Losing that race only means one write fails with EBADF and its lines are dropped.
  if (old >= 0) ::close(old);
  return {};
}

void AccessLog::add(const AccessRecord& r) {
  if (!file_) return;
  format_access_record(r, buf_);
  if (buf_.size() >= 32 * 1024) flush();
}

void AccessLog::flush() noexcept {
  if (!file_ || buf_.empty()) return;
  file_->write(buf_);
  buf_.clear();
}

} // namespace gw::observe
