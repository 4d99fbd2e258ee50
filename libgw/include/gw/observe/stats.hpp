// Counters and latency histograms per route, upstream and endpoint. Each worker owns its own
// (plain integers, no atomics: only that worker writes them); the control plane asks every
// worker for a copy and merges them. Keyed by name, so they survive reloads.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gw::observe {

/// Log-linear latency histogram in microseconds: 4 sub-buckets per power of two, so a
/// percentile is within about 19% of the true value. Covers 1 µs to over an hour.
class Histogram {
public:
  void add(std::uint64_t us) noexcept;
  void merge(const Histogram& o) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  /// The value below which `p` (0..1) of the samples fall (upper bucket bound).
  std::uint64_t percentile(double p) const noexcept;
  std::uint64_t max() const noexcept { return max_; }
  std::uint64_t mean() const noexcept { return count_ ? sum_ / count_ : 0; }

private:
  static constexpr std::size_t kBuckets = 4 * 40;
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

struct Counters {
  std::uint64_t requests = 0;
  std::array<std::uint64_t, 6> status{}; // [0] no status, [1] 1xx ... [5] 5xx
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint64_t local_replies = 0; // answered by gw itself (errors, 404/405)
  std::uint64_t retries = 0;
  std::uint64_t connect_failures = 0, timeouts = 0, protocol_errors = 0;
  Histogram latency; // whole request

  void record_status(unsigned s) noexcept { ++status[s >= 100 && s < 600 ? s / 100 : 0]; }
  void merge(const Counters& o) noexcept;
  nlohmann::json to_json() const;
};

struct EndpointView {
  std::string upstream, address, state;
  std::uint32_t weight = 1;
  std::uint64_t active = 0, idle = 0, requests = 0, failures = 0;
};

/// What one worker reports to the control plane.
struct StatsView {
  std::map<std::string, Counters> routes;
  std::map<std::string, Counters> upstreams;
  Counters unrouted; // requests no route took (400, 404, 405, ...)
  std::vector<EndpointView> endpoints;
  std::uint64_t connections = 0;
  std::uint64_t rate_limit_store_errors = 0; // rate limit checks the store (Redis) could not answer
  std::uint64_t ext_auth_errors = 0;         // authorization services that did not answer
  std::uint64_t lua_errors = 0;              // Lua plugin hooks that failed (error, budget, memory)
  void merge(const StatsView& o);
};

} // namespace gw::observe
