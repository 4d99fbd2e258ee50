// The .gwrt binary route table: a checksummed, byte-for-byte reproducible container for a
// validated model::Config. Little-endian, written by explicit byte writers (never raw structs).
//
//   0   magic "GWRT\r\n\x1a\n"      catches text-mode mangling and truncation by `cat`
//   8   u16 major, u16 minor        readers accept their major with minor <= their own
//   12  u32 header_size (64)
//   16  u64 file_size               checked before anything else
//   24  u32 section_count, u32 flags
//   32  u8[32] SHA-256 of the whole file with this field zeroed
//   64  directory: section_count x {u32 tag, u32 flags, u64 offset, u64 size}
//
// Sections: META (compiler, sources and their digests), STRS (string table), UPST (upstreams),
// POLI (policies), ROUT (routes in precedence order). Every reference is an index.
// Read next: encode.hpp, decode.hpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "gw/core/error.hpp"
#include "gw/core/sha256.hpp"

namespace gw::table {

inline constexpr unsigned char kMagic[8] = {'G', 'W', 'R', 'T', '\r', '\n', 0x1a, '\n'};
inline constexpr std::uint16_t kFormatMajor = 1;
inline constexpr std::uint16_t kFormatMinor = 0;
inline constexpr std::uint32_t kHeaderSize = 64;
inline constexpr std::uint32_t kDirEntrySize = 24;
inline constexpr std::uint32_t kMaxSections = 64;
inline constexpr std::uint64_t kMaxTableBytes = 512ULL << 20;
inline constexpr std::uint32_t kSectionOptional = 1; // section flag: readers may skip it

constexpr std::uint32_t tag(const char (&s)[5]) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(s[0])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[1])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[2])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[3])) << 24;
}
inline constexpr std::uint32_t kMeta = tag("META");
inline constexpr std::uint32_t kStrings = tag("STRS");
inline constexpr std::uint32_t kUpstreams = tag("UPST");
inline constexpr std::uint32_t kPolicies = tag("POLI");
inline constexpr std::uint32_t kRoutes = tag("ROUT");

/// Every way a table can be rejected. Each is a distinct, named error.
enum class errc {
  ok = 0,
  empty = 1,            // zero bytes
  bad_magic,            // not a .gwrt file
  truncated,            // shorter than its header says
  size_mismatch,        // longer than its header says
  unsupported_version,  // another major, or a newer minor
  bad_header,           // header size or section count out of range
  checksum_mismatch,    // content does not hash to the recorded SHA-256
  section_out_of_range, // a section lies outside the file or overlaps another
  duplicate_section,
  unknown_section, // a required section this reader does not know
  missing_section,
  section_overrun,    // a record runs past its section's end
  trailing_bytes,     // a section has bytes after its last record
  bad_string,         // string index out of range
  index_out_of_range, // an upstream, policy or source index out of range
  bad_value,          // an enum, count or field value out of range
  too_large,          // above kMaxTableBytes
  io_error,
};
const std::error_category& table_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), table_category()};
}

std::string section_name(std::uint32_t tag);

struct SectionInfo {
  std::uint32_t tag = 0;
  std::uint32_t flags = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

/// What `gwctl inspect` shows of a table besides its routes.
struct TableInfo {
  std::uint16_t major = 0, minor = 0;
  std::uint64_t file_size = 0;
  Sha256 digest{};
  std::vector<SectionInfo> sections;
  std::string compiler; // "gwctl 0.1.0"
  std::string label;
  std::uint64_t timestamp = 0; // seconds since the epoch; 0 = not recorded
};

/// True when `bytes` starts with the table magic (content sniffing, not file extensions).
bool has_magic(std::span<const unsigned char> bytes) noexcept;

/// Recomputes and stores the digest (after encode, and in tests that craft damaged tables).
void seal(std::vector<unsigned char>& bytes);

} // namespace gw::table

template <>
struct std::is_error_code_enum<gw::table::errc> : std::true_type {};
