// table::encode / table::decode / read_file / write_file: model::Config <-> .gwrt bytes.
// decode() treats its input as hostile: every offset, length, count and index is checked and each
// failure is a named table::errc, never a crash or an unbounded allocation.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "gw/model/config.hpp"
#include "gw/table/format.hpp"

namespace gw::table {

struct EncodeOptions {
  std::string label;
  std::uint64_t timestamp = 0; // 0 keeps the output reproducible
};

/// Deterministic: the same Config and options always give the same bytes.
std::vector<unsigned char> encode(const model::Config& config, const EncodeOptions& opts = {});

struct Decoded {
  model::Config config;
  TableInfo info;
};

Result<Decoded> decode(std::span<const unsigned char> bytes);

/// Reads and decodes; errors name the file.
Result<Decoded> read_file(const std::string& path);

/// Writes atomically (temp file, fsync, rename, fsync of the directory).
Result<void> write_file(const std::string& path, std::span<const unsigned char> bytes);

} // namespace gw::table
