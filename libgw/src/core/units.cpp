#include "gw/core/units.hpp"

#include <cmath>

namespace gw::units {
namespace {

constexpr std::int64_t kMaxDurationMs = 24LL * 24 * 3600 * 1000; // fits a u32 with room to spare

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

} // namespace

Result<Millis> parse_duration(std::string_view text) {
  if (text.empty()) return fail(errc::invalid_argument, "empty duration");
  std::size_t i = 0;
  double total_ms = 0;
  while (i < text.size()) {
    // number: digits with an optional fraction
    const std::size_t start = i;
    std::uint64_t whole = 0;
    while (i < text.size() && is_digit(text[i])) {
      whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
      if (whole > 1'000'000'000'000ULL) return fail(errc::invalid_argument, "duration too large");
      ++i;
    }
    double frac = 0, scale = 0.1;
    if (i < text.size() && text[i] == '.') {
      ++i;
      if (i >= text.size() || !is_digit(text[i]))
        return fail(errc::invalid_argument, "expected digits after '.'");
      while (i < text.size() && is_digit(text[i])) {
        frac += scale * (text[i] - '0');
        scale /= 10;
        ++i;
      }
    }
    if (i == start) {
      if (text[i] == '-') return fail(errc::invalid_argument, "durations cannot be negative");
      return fail(errc::invalid_argument, "expected a number");
    }
    const std::size_t ustart = i;
    while (i < text.size() && !is_digit(text[i]) && text[i] != '.')
      ++i;
    const std::string_view unit = text.substr(ustart, i - ustart);
    double factor;
    if (unit == "ms")
      factor = 1;
    else if (unit == "s")
      factor = 1000;
    else if (unit == "m")
      factor = 60'000;
    else if (unit == "h")
      factor = 3'600'000;
    else if (unit.empty())
      return fail(errc::invalid_argument, "missing unit (use ms, s, m or h, e.g. \"5s\")");
    else
      return fail(errc::invalid_argument,
                  "unknown unit \"" + std::string(unit) + "\" (use ms, s, m or h)");
    total_ms += (static_cast<double>(whole) + frac) * factor;
    if (total_ms > static_cast<double>(kMaxDurationMs))
      return fail(errc::invalid_argument, "duration above the 24-day maximum");
  }
  const double rounded = std::round(total_ms);
  if (std::fabs(rounded - total_ms) > 1e-6)
    return fail(errc::invalid_argument, "durations have millisecond resolution");
  return Millis(static_cast<std::int64_t>(rounded));
}

std::string format_duration(Millis d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms % 1000 != 0 && ms < 1000) return std::to_string(ms) + "ms";
  const std::int64_t h = ms / 3'600'000;
  ms %= 3'600'000;
  const std::int64_t m = ms / 60'000;
  ms %= 60'000;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (ms) {
    if (ms % 1000 == 0) {
      out += std::to_string(ms / 1000) + "s";
    } else if (h == 0 && m == 0) {
      // 1500 -> "1.5s"
      std::string frac = std::to_string(ms % 1000);
      frac.insert(0, 3 - frac.size(), '0');
      while (!frac.empty() && frac.back() == '0')
        frac.pop_back();
      out += std::to_string(ms / 1000) + "." + frac + "s";
    } else {
      out += std::to_string(ms) + "ms";
    }
  }
  return out;
}

Result<std::uint64_t> parse_size(std::string_view text) {
  std::size_t i = 0;
  std::uint64_t n = 0;
  if (text.empty()) return fail(errc::invalid_argument, "empty size");
  if (text[0] == '-') return fail(errc::invalid_argument, "sizes cannot be negative");
  while (i < text.size() && is_digit(text[i])) {
    n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
    if (n > (1ULL << 53)) return fail(errc::invalid_argument, "size too large");
    ++i;
  }
  if (i == 0) return fail(errc::invalid_argument, "expected a number");
  const std::string_view unit = text.substr(i);
  std::uint64_t factor;
  if (unit.empty() || unit == "B")
    factor = 1;
  else if (unit == "KB")
    factor = 1000;
  else if (unit == "MB")
    factor = 1000 * 1000;
  else if (unit == "GB")
    factor = 1000ULL * 1000 * 1000;
  else if (unit == "KiB")
    factor = 1024;
  else if (unit == "MiB")
    factor = 1024 * 1024;
  else if (unit == "GiB")
    factor = 1024ULL * 1024 * 1024;
  else
    return fail(errc::invalid_argument, "unknown size unit \"" + std::string(unit) +
                                            "\" (use B, KB, MB, GB, KiB, MiB, GiB)");
  if (n > (1ULL << 53) / factor) return fail(errc::invalid_argument, "size too large");
  return n * factor;
}

std::string format_size(std::uint64_t bytes) {
  if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0)
    return std::to_string(bytes >> 30) + "GiB";
  if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0)
    return std::to_string(bytes >> 20) + "MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes) + "B";
}

} // namespace gw::units
