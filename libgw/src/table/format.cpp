#include "gw/table/format.hpp"

#include <algorithm>
#include <cstring>

namespace gw::table {
namespace {

class TableCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "table"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
    case errc::ok:
      return "ok";
    case errc::empty:
      return "empty";
    case errc::bad_magic:
      return "bad_magic";
    case errc::truncated:
      return "truncated";
    case errc::size_mismatch:
      return "size_mismatch";
    case errc::unsupported_version:
      return "unsupported_version";
    case errc::bad_header:
      return "bad_header";
    case errc::checksum_mismatch:
      return "checksum_mismatch";
    case errc::section_out_of_range:
      return "section_out_of_range";
    case errc::duplicate_section:
      return "duplicate_section";
    case errc::unknown_section:
      return "unknown_section";
    case errc::missing_section:
      return "missing_section";
    case errc::section_overrun:
      return "section_overrun";
    case errc::trailing_bytes:
      return "trailing_bytes";
    case errc::bad_string:
      return "bad_string";
    case errc::index_out_of_range:
      return "index_out_of_range";
    case errc::bad_value:
      return "bad_value";
    case errc::too_large:
      return "too_large";
    case errc::io_error:
      return "io_error";
    }
    return "unknown";
  }
};

} // namespace

const std::error_category& table_category() noexcept {
  static const TableCategory cat;
  return cat;
}

std::string section_name(std::uint32_t t) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((t >> (8 * i)) & 0xff);
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}

bool has_magic(std::span<const unsigned char> bytes) noexcept {
  return bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
}

void seal(std::vector<unsigned char>& bytes) {
  if (bytes.size() < kHeaderSize) return;
  std::fill(bytes.begin() + 32, bytes.begin() + 64, 0);
  const Sha256 d = sha256(bytes);
  std::copy(d.begin(), d.end(), bytes.begin() + 32);
}

} // namespace gw::table
