// Private: little-endian byte writer and bounds-checked reader for the .gwrt format.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace gw::table::detail {

class Writer {
public:
  explicit Writer(std::vector<unsigned char>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { put(v, 2); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::size_t size() const { return out_.size(); }
  /// Overwrites a u32/u64 at an earlier offset (section directory back-patching).
  void patch_u32(std::size_t at, std::uint32_t v) { patch(at, v, 4); }
  void patch_u64(std::size_t at, std::uint64_t v) { patch(at, v, 8); }

private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      out_.push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
  void patch(std::size_t at, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      out_[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
  }
  std::vector<unsigned char>& out_;
};

/// Reads fixed-width values; past the end it returns zeros and remembers the overrun, so callers
/// check failed() once per record instead of after every field.
class Reader {
public:
  explicit Reader(std::span<const unsigned char> data) : data_(data) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(get(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(get(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(get(4)); }
  std::uint64_t u64() { return get(8); }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::span<const unsigned char> bytes(std::size_t n) {
    if (n > remaining()) {
      failed_ = true;
      pos_ = data_.size();
      return {};
    }
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  bool failed() const noexcept { return failed_; }
  std::size_t remaining() const noexcept { return data_.size() - pos_; }
  std::size_t pos() const noexcept { return pos_; }

private:
  std::uint64_t get(int n) {
    if (static_cast<std::size_t>(n) > remaining()) {
      failed_ = true;
      pos_ = data_.size();
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
      v |= static_cast<std::uint64_t>(data_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  std::span<const unsigned char> data_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

} // namespace gw::table::detail
