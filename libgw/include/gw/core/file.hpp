// Whole-file reads with a size cap, and atomic replacement (temp + fsync + rename + fsync dir).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "gw/core/error.hpp"

namespace gw::file {

/// Reads a regular file whole. Fails with errc::too_large past `max_bytes` (before reading it),
/// errc::not_found, or errc::io_error with the OS reason. Read messages do not repeat the path.
Result<std::string> read_all(const std::string& path, std::uint64_t max_bytes);

/// Writes `data` to `path` atomically: a reader sees the old file or the complete new one, never
/// a partial write, even across a crash.
Result<void> write_atomic(const std::string& path, std::span<const unsigned char> data);

} // namespace gw::file
