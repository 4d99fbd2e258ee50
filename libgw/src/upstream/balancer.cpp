#include "gw/upstream/balancer.hpp"

#include <algorithm>
#include <string>

namespace gw::upstream {
namespace {

bool candidate(Loads eps, std::uint32_t i, const Excluded& tried, bool strict) {
  return eps[i]->usable && eps[i]->weight > 0 && (!strict || !tried.contains(i));
}

/// nginx's smooth weighted round robin: each pick adds every weight to its endpoint's current
/// value and takes the largest, which then gives back the total. Spreads heavy endpoints out.
class SmoothRoundRobin final : public Balancer {
public:
  explicit SmoothRoundRobin(std::size_t n) : current_(n, 0) {}
  std::optional<std::uint32_t> pick(Loads eps, std::uint64_t, const Excluded& tried) override {
    if (current_.size() != eps.size()) current_.assign(eps.size(), 0);
    for (const bool strict : {true, false}) {
      std::int64_t total = 0;
      std::optional<std::uint32_t> best;
      for (std::uint32_t i = 0; i < eps.size(); ++i) {
        if (!candidate(eps, i, tried, strict)) continue;
        current_[i] += eps[i]->weight;
        total += eps[i]->weight;
        if (!best || current_[i] > current_[*best]) best = i;
      }
      if (best) {
        current_[*best] -= total;
        return best;
      }
    }
    return std::nullopt;
  }

private:
  std::vector<std::int64_t> current_;
};

/// Power of two choices: two random candidates, the one with fewer requests in flight per unit
/// of weight wins. Near-optimal spread without scanning every endpoint.
class LeastRequest final : public Balancer {
public:
  explicit LeastRequest(std::uint64_t seed) : rng_(seed) {}
  std::optional<std::uint32_t> pick(Loads eps, std::uint64_t, const Excluded& tried) override {
    for (const bool strict : {true, false}) {
      usable_.clear();
      for (std::uint32_t i = 0; i < eps.size(); ++i)
        if (candidate(eps, i, tried, strict)) usable_.push_back(i);
      if (usable_.empty()) continue;
      if (usable_.size() == 1) return usable_[0];
      const std::uint32_t a = usable_[rng_() % usable_.size()];
      std::uint32_t b = usable_[rng_() % (usable_.size() - 1)];
      if (b == a) b = usable_.back();
      // Compare active/weight without division: a_active * b_weight vs b_active * a_weight.
      const std::uint64_t la = std::uint64_t{eps[a]->active} * eps[b]->weight;
      const std::uint64_t lb = std::uint64_t{eps[b]->active} * eps[a]->weight;
      return la <= lb ? a : b;
    }
    return std::nullopt;
  }

private:
  std::mt19937_64 rng_;
  std::vector<std::uint32_t> usable_;
};

/// Ketama-style ring: 100 virtual nodes per unit of weight (capped). Point p of an endpoint sits
/// at hash("ADDRESS#p"), so an endpoint's points do not depend on the others: removing one takes
/// away only its points (its keys go to their next point, every other key stays), adding one
/// takes keys only for itself, and a weight change moves keys only to or from that endpoint.
class RingHash final : public Balancer {
public:
  RingHash(Loads eps, Identities ids) {
    const auto id = [ids](std::uint32_t i) { return i < ids.size() ? ids[i] : std::string_view{}; };
    std::string name;
    for (std::uint32_t i = 0; i < eps.size(); ++i) {
      const std::uint32_t points =
          std::min<std::uint32_t>(100 * std::max<std::uint32_t>(1, eps[i]->weight), 10000);
      name.assign(id(i));
      name += '#';
      const std::size_t stem = name.size();
      for (std::uint32_t p = 0; p < points; ++p) {
        name.resize(stem);
        name += std::to_string(p);
        ring_.emplace_back(hash_key(name), i);
      }
    }
    // Equal hashes (vanishingly rare) are ordered by identity, not by list position, so the
    // ring is the same whatever order the endpoints are listed in.
    std::sort(ring_.begin(), ring_.end(), [&](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      return id(a.second) < id(b.second);
    });
  }
  std::optional<std::uint32_t> pick(Loads eps, std::uint64_t key, const Excluded& tried) override {
    if (ring_.empty()) return std::nullopt;
    for (const bool strict : {true, false}) {
      auto it =
          std::lower_bound(ring_.begin(), ring_.end(), key,
                           [](const auto& point, std::uint64_t k) { return point.first < k; });
      for (std::size_t n = 0; n < ring_.size(); ++n, ++it) {
        if (it == ring_.end()) it = ring_.begin();
        if (it->second < eps.size() && candidate(eps, it->second, tried, strict)) return it->second;
      }
    }
    return std::nullopt;
  }

private:
  std::vector<std::pair<std::uint64_t, std::uint32_t>> ring_;
};

class WeightedRandom final : public Balancer {
public:
  explicit WeightedRandom(std::uint64_t seed) : rng_(seed) {}
  std::optional<std::uint32_t> pick(Loads eps, std::uint64_t, const Excluded& tried) override {
    for (const bool strict : {true, false}) {
      std::uint64_t total = 0;
      for (std::uint32_t i = 0; i < eps.size(); ++i)
        if (candidate(eps, i, tried, strict)) total += eps[i]->weight;
      if (total == 0) continue;
      std::uint64_t r = rng_() % total;
      for (std::uint32_t i = 0; i < eps.size(); ++i) {
        if (!candidate(eps, i, tried, strict)) continue;
        if (r < eps[i]->weight) return i;
        r -= eps[i]->weight;
      }
    }
    return std::nullopt;
  }

private:
  std::mt19937_64 rng_;
};

} // namespace

std::unique_ptr<Balancer> Balancer::make(model::Balance kind, Loads eps, Identities ids,
                                         std::uint64_t seed) {
  switch (kind) {
  case model::Balance::round_robin:
    return std::make_unique<SmoothRoundRobin>(eps.size());
  case model::Balance::least_request:
    return std::make_unique<LeastRequest>(seed);
  case model::Balance::hash:
    return std::make_unique<RingHash>(eps, ids);
  case model::Balance::random:
    return std::make_unique<WeightedRandom>(seed);
  }
  return std::make_unique<SmoothRoundRobin>(eps.size());
}

std::uint64_t hash_key(std::string_view s) noexcept {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  // Finalise so that similar keys land far apart on the ring.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

} // namespace gw::upstream
