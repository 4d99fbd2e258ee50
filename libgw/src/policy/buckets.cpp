#include "gw/policy/buckets.hpp"

#include <algorithm>
#include <functional>

namespace gw::policy {

Take gcra(std::int64_t& tat_ns, std::int64_t now_ns, std::int64_t interval_ns, std::int64_t burst) {
  // The bucket is full when tat <= now; each request moves tat one interval later, and a request
  // is refused when that would put tat more than `burst` intervals ahead of now.
  const std::int64_t tat = std::max(tat_ns, now_ns);
  const std::int64_t next = tat + interval_ns;
  const std::int64_t limit = burst * interval_ns;
  Take t;
  if (next - now_ns > limit) {
    t.allowed = false;
    t.remaining = 0;
    t.retry_after_ms = (next - now_ns - limit + 999'999) / 1'000'000;
    t.reset_ms = (tat - now_ns + 999'999) / 1'000'000;
    return t;
  }
  tat_ns = next;
  t.allowed = true;
  t.remaining = (limit - (next - now_ns)) / interval_ns;
  t.reset_ms = (next - now_ns + 999'999) / 1'000'000;
  return t;
}

Buckets::Buckets(std::int64_t interval_us, std::int64_t burst)
    : interval_ns_(interval_us * 1000), burst_(burst) {}

Buckets::Slot Buckets::slot(std::string_view key, std::int64_t now_ns) {
  Shard& s = shards_[Hash{}(key) % kShards];
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) {
    if (s.map.size() >= s.sweep_at) { // full buckets hold nothing worth keeping
      std::erase_if(s.map, [&](const auto& kv) {
        return kv.second->load(std::memory_order_relaxed) <= now_ns;
      });
      // Next sweep when the map has doubled: a flood of live keys must not make every new key
      // scan the whole shard (amortised O(1) per key, memory at most twice the live keys).
      s.sweep_at = std::max(kSweepAbove, 2 * s.map.size());
    }
    it = s.map.emplace(std::string(key), std::make_shared<std::atomic<std::int64_t>>(0)).first;
  }
  return it->second;
}

template <class Now>
Take Buckets::take_with(std::string_view key, Now now) {
  const Slot cell = slot(key, now());
  // Lock-free from here: workers race on the arrival time with compare-and-swap. The clock is
  // read after the arrival time is seen (acquire), so it is at least the reading that set it.
  std::int64_t seen = cell->load(std::memory_order_acquire);
  for (;;) {
    std::int64_t tat = seen;
    Take t = gcra(tat, now(), interval_ns_, burst_);
    if (!t.allowed) return t;
    if (cell->compare_exchange_weak(seen, tat, std::memory_order_acq_rel,
                                    std::memory_order_acquire))
      return t;
  }
}

Take Buckets::take(std::string_view key, std::int64_t (*now)()) {
  return take_with(key, now);
}

Take Buckets::take(std::string_view key, std::int64_t now_ns) {
  return take_with(key, [now_ns] { return now_ns; });
}

std::size_t Buckets::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

std::shared_ptr<Buckets> BucketRegistry::get(const std::string& identity, std::int64_t interval_us,
                                             std::int64_t burst) {
  std::lock_guard lock(mu_);
  std::erase_if(map_, [](const auto& kv) { return kv.second.expired(); });
  auto& w = map_[identity];
  if (auto b = w.lock()) return b;
  auto b = std::make_shared<Buckets>(interval_us, burst);
  w = b;
  return b;
}

} // namespace gw::policy
