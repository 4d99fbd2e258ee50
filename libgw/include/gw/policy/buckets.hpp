// Local rate-limit buckets: the generic cell rate algorithm (a token bucket of `burst` tokens
// refilled one every `interval`), one atomic "theoretical arrival time" per key, so every worker
// of a gwd counts against the same bucket without a lock on the bucket. Keys live in a sharded
// map (a short lock per shard to find or insert a key); full buckets are dropped as the map grows.
// Buckets are owned outside table generations, so a reload that keeps a policy keeps its counts.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gw::policy {

/// The outcome of taking one token.
struct Take {
  bool allowed = false;
  std::int64_t remaining = 0;      // tokens left after this request
  std::int64_t retry_after_ms = 0; // when refused: until the next token
  std::int64_t reset_ms = 0;       // until the bucket is full again
};

/// GCRA on one arrival time; pure, for the local store and its tests. `tat` is updated when
/// the request is allowed.
Take gcra(std::int64_t& tat_ns, std::int64_t now_ns, std::int64_t interval_ns, std::int64_t burst);

class Buckets {
public:
  Buckets(std::int64_t interval_us, std::int64_t burst);
  /// Takes a token for `key`. `now()` (monotonic nanoseconds) is read after each look at the
  /// bucket: a worker never judges an arrival time another worker set with a clock reading newer
  /// than its own, so under contention the count stays exact and `remaining` never dips.
  Take take(std::string_view key, std::int64_t (*now)());
  /// The same at a fixed time (tests).
  Take take(std::string_view key, std::int64_t now_ns);
  std::size_t size() const;

private:
  using Slot = std::shared_ptr<std::atomic<std::int64_t>>; // held by a taker while a sweep runs
  Slot slot(std::string_view key, std::int64_t now_ns);
  template <class Now>
  Take take_with(std::string_view key, Now now);

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Slot, Hash, std::equal_to<>> map;
    std::size_t sweep_at = kSweepAbove; // map size that triggers the next sweep; guarded by mu
  };
  static constexpr std::size_t kShards = 32;
  static constexpr std::size_t kSweepAbove = 4096; // keys per shard before full buckets are dropped
  std::int64_t interval_ns_, burst_;
  std::array<Shard, kShards> shards_;
};

/// Buckets by policy identity (name and settings): what survives a reload.
class BucketRegistry {
public:
  std::shared_ptr<Buckets> get(const std::string& identity, std::int64_t interval_us,
                               std::int64_t burst);

private:
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<Buckets>> map_;
};

} // namespace gw::policy
