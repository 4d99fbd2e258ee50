#include "gw/observe/stats.hpp"

#include <bit>

namespace gw::observe {
namespace {

/// Bucket of a value: 4 linear sub-buckets per power of two.
std::size_t bucket_of(std::uint64_t v) {
  if (v < 4) return static_cast<std::size_t>(v);
  const int msb = 63 - std::countl_zero(v);
  const std::uint64_t sub = (v >> (msb - 2)) & 3;
  return static_cast<std::size_t>((msb - 1) * 4 + sub);
}

/// Upper bound of a bucket.
std::uint64_t bucket_top(std::size_t b) {
  if (b < 4) return b;
  const std::size_t msb = b / 4 + 1, sub = b % 4;
  return ((4 + sub + 1) << (msb - 2)) - 1;
}

} // namespace

void Histogram::add(std::uint64_t us) noexcept {
  std::size_t b = bucket_of(us);
  if (b >= kBuckets) b = kBuckets - 1;
  ++buckets_[b];
  ++count_;
  sum_ += us;
  if (us > max_) max_ = us;
}

void Histogram::merge(const Histogram& o) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i)
    buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  if (o.max_ > max_) max_ = o.max_;
}

std::uint64_t Histogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  const auto want = static_cast<std::uint64_t>(p * static_cast<double>(count_) + 0.5);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= want && buckets_[i] > 0) return std::min(bucket_top(i), max_);
  }
  return max_;
}

void Counters::merge(const Counters& o) noexcept {
  requests += o.requests;
  for (std::size_t i = 0; i < status.size(); ++i)
    status[i] += o.status[i];
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  local_replies += o.local_replies;
  retries += o.retries;
  connect_failures += o.connect_failures;
  timeouts += o.timeouts;
  protocol_errors += o.protocol_errors;
  latency.merge(o.latency);
}

nlohmann::json Counters::to_json() const {
  return {{"requests", requests},
          {"status",
           {{"1xx", status[1]},
            {"2xx", status[2]},
            {"3xx", status[3]},
            {"4xx", status[4]},
            {"5xx", status[5]}}},
          {"bytes_in", bytes_in},
          {"bytes_out", bytes_out},
          {"local_replies", local_replies},
          {"retries", retries},
          {"connect_failures", connect_failures},
          {"timeouts", timeouts},
          {"protocol_errors", protocol_errors},
          {"latency_us",
           {{"p50", latency.percentile(0.5)},
            {"p90", latency.percentile(0.9)},
            {"p99", latency.percentile(0.99)},
            {"max", latency.max()},
            {"mean", latency.mean()}}}};
}

void StatsView::merge(const StatsView& o) {
  for (const auto& [k, v] : o.routes)
    routes[k].merge(v);
  for (const auto& [k, v] : o.upstreams)
    upstreams[k].merge(v);
  unrouted.merge(o.unrouted);
  connections += o.connections;
  rate_limit_store_errors += o.rate_limit_store_errors;
  ext_auth_errors += o.ext_auth_errors;
  lua_errors += o.lua_errors;
  for (const auto& e : o.endpoints) {
    bool found = false;
    for (auto& mine : endpoints) {
      if (mine.upstream == e.upstream && mine.address == e.address) {
        mine.active += e.active;
        mine.idle += e.idle;
        mine.requests += e.requests;
        mine.failures += e.failures;
        found = true;
        break;
      }
    }
    if (!found) endpoints.push_back(e);
  }
}

} // namespace gw::observe
