// The access log: one JSON line per request. Workers format into their own buffer and append
// whole lines to one shared file descriptor (O_APPEND keeps lines intact); SIGUSR1 reopens the
// file for log rotation. Query values whose names look secret are redacted.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "gw/core/error.hpp"

namespace gw::observe {

struct AccessRecord {
  std::int64_t time_us = 0; // start of the request, microseconds since the epoch
  unsigned worker = 0;
  std::uint64_t generation = 0;
  std::string_view request_id, client, method, host, path, query, route, upstream, endpoint, error;
  std::string_view error_detail; // what went wrong, with addresses: never sent to the client
  std::string_view consumer;     // who the route's policies authenticated
  std::span<const std::string> secret_params; // the route's query credentials, redacted too
  unsigned status = 0;
  unsigned upstream_status = 0;
  unsigned attempts = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint64_t duration_us = 0, upstream_us = 0;
};

/// Appends one JSON object and a newline to `out`.
void format_access_record(const AccessRecord& r, std::string& out);

/// Appends `query` with the values of secret-looking parameters (and of `also`) replaced by
/// "REDACTED".
void append_redacted_query(std::string_view query, std::string& out,
                           std::span<const std::string> also = {});

/// The log destination, shared by all workers. Thread-safe.
class LogFile {
public:
  /// "-" is standard output; "" disables logging.
  static Result<std::unique_ptr<LogFile>> open(const std::string& path);
  ~LogFile();
  /// Writes whole lines; never blocks on a lock.
  void write(std::string_view lines) noexcept;
  /// Opens the path again (after rotation); the old descriptor is closed once swapped.
  Result<void> reopen();
  const std::string& path() const noexcept { return path_; }

private:
  LogFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  std::atomic<int> fd_;
};

/// A worker's buffer in front of a LogFile. Worker-local.
class AccessLog {
public:
  explicit AccessLog(LogFile* file) : file_(file) {}
  ~AccessLog() { flush(); }
  bool enabled() const noexcept { return file_ != nullptr; }
  void add(const AccessRecord& r);
  void flush() noexcept;

private:
  LogFile* file_;
  std::string buf_;
};

} // namespace gw::observe
