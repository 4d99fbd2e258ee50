// Load balancing over an upstream's endpoints (worker-local, no locks): smooth weighted round
// robin (nginx's), least-request with the power of two choices (Envoy's), consistent hashing on a
// ring with weighted virtual nodes (ketama), weighted random. Retries pass the endpoints already
// tried so that a retry lands elsewhere when it can.
//
// The ring's points come from each endpoint's identity (its address), never from its position
// in the list, so the same endpoints give the same ring in any order, in every worker and after
// every reload, and removing an endpoint moves only the keys that were on it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "gw/model/config.hpp"

namespace gw::upstream {

/// What a balancer sees of each endpoint. `usable` is false for drained or unhealthy ones.
struct EndpointLoad {
  std::uint32_t weight = 1;
  std::uint32_t active = 0; // requests in flight from this worker
  bool usable = true;
};

/// The endpoints' load, in endpoint order. Pointers, because the endpoint objects outlive a
/// table generation (they carry pools and counters across reloads).
using Loads = std::span<const EndpointLoad* const>;

/// Each endpoint's identity (its address as the spec writes it), in endpoint order.
using Identities = std::span<const std::string_view>;

/// A small set of endpoint indices (those already tried by this request).
class Excluded {
public:
  void add(std::uint32_t i) {
    if (i < 64)
      bits_ |= 1ULL << i;
    else
      more_.push_back(i);
  }
  bool contains(std::uint32_t i) const {
    if (i < 64) return (bits_ >> i) & 1;
    for (auto m : more_)
      if (m == i) return true;
    return false;
  }

private:
  std::uint64_t bits_ = 0;
  std::vector<std::uint32_t> more_;
};

/// Worker-local; not thread-safe.
class Balancer {
public:
  virtual ~Balancer() = default;
  /// An endpoint index, or nullopt when none is usable. `key` is the request's hash key
  /// (used by hash balancing only). Excluded endpoints are avoided unless nothing else is usable.
  virtual std::optional<std::uint32_t> pick(Loads eps, std::uint64_t key,
                                            const Excluded& tried) = 0;

  /// `ids` places the hash ring's points (the other kinds ignore it); `seed` drives the random
  /// choices of least_request and random.
  static std::unique_ptr<Balancer> make(model::Balance kind, Loads eps, Identities ids,
                                        std::uint64_t seed);
};

/// 64-bit FNV-1a, for hash keys (header values, cookies, client addresses).
std::uint64_t hash_key(std::string_view s) noexcept;

} // namespace gw::upstream
