// Durations ("250ms", "5s", "1m30s") and byte sizes ("64KiB", "10MB") as written in specs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "gw/core/error.hpp"

namespace gw::units {

using Millis = std::chrono::milliseconds;

/// Parses a duration: one or more `<number><unit>` groups, units ms, s, m, h; decimals allowed
/// (`1.5s`). Negative values, missing units and values above 24 days are errors.
Result<Millis> parse_duration(std::string_view text);

/// Shortest exact form: 1500ms -> "1.5s", 90000ms -> "1m30s".
std::string format_duration(Millis d);

/// Parses a size: an integer with an optional unit B, KB, MB, GB (powers of 1000) or KiB, MiB,
/// GiB (powers of 1024). Values above 2^53 are errors.
Result<std::uint64_t> parse_size(std::string_view text);

/// "16MiB", "1000B"...: exact binary units when possible.
std::string format_size(std::uint64_t bytes);

} // namespace gw::units
