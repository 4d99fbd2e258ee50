#include <catch2/catch.hpp>

#include <map>

#include "gw/upstream/balancer.hpp"

using namespace gw::upstream;
using gw::model::Balance;

namespace {
/// Endpoint loads as the balancer sees them (pointers), backed by a vector the test edits.
struct Eps {
  std::vector<EndpointLoad> v;
  std::vector<const EndpointLoad*> p;
  explicit Eps(std::vector<EndpointLoad> in) : v(std::move(in)) {
    for (const auto& e : v)
      p.push_back(&e);
  }
  EndpointLoad& operator[](std::size_t i) { return v[i]; }
  operator Loads() const { return p; }
};

std::map<std::uint32_t, int> spread(Balancer& b, Eps& eps, int n, std::uint64_t key = 0) {
  std::map<std::uint32_t, int> out;
  for (int i = 0; i < n; ++i)
    out[*b.pick(eps, key, {})]++;
  return out;
}
} // namespace

TEST_CASE("smooth weighted round robin interleaves by weight", "[upstream]") {
  Eps eps({{5, 0, true}, {1, 0, true}, {1, 0, true}});
  auto b = Balancer::make(Balance::round_robin, eps, 1);
  std::string seq;
  for (int i = 0; i < 7; ++i)
    seq += static_cast<char>('a' + *b->pick(eps, 0, {}));
  CHECK(seq == "aabacaa"); // nginx's sequence for weights 5,1,1
  CHECK(spread(*b, eps, 700) == std::map<std::uint32_t, int>{{0, 500}, {1, 100}, {2, 100}});
}

TEST_CASE("unusable endpoints are skipped, and none usable gives nothing", "[upstream]") {
  Eps eps({{1, 0, false}, {1, 0, true}});
  for (auto kind : {Balance::round_robin, Balance::least_request, Balance::hash, Balance::random}) {
    auto b = Balancer::make(kind, eps, 7);
    for (int i = 0; i < 20; ++i)
      CHECK(*b->pick(eps, static_cast<std::uint64_t>(i) * 7919, {}) == 1);
    eps[1].usable = false;
    CHECK_FALSE(b->pick(eps, 1, {}));
    eps[1].usable = true;
  }
}

TEST_CASE("retries avoid endpoints already tried when they can", "[upstream]") {
  Eps eps({{1, 0, true}, {1, 0, true}, {1, 0, true}});
  for (auto kind : {Balance::round_robin, Balance::least_request, Balance::hash, Balance::random}) {
    auto b = Balancer::make(kind, eps, 3);
    for (int i = 0; i < 50; ++i) {
      Excluded tried;
      const auto first = *b->pick(eps, static_cast<std::uint64_t>(i) * 104729, tried);
      tried.add(first);
      const auto second = *b->pick(eps, static_cast<std::uint64_t>(i) * 104729, tried);
      CHECK(second != first);
      tried.add(second);
      tried.add(3 - first - second);
      CHECK(b->pick(eps, 0, tried)); // all tried: any usable one is still better than none
    }
  }
}

TEST_CASE("least request prefers the less loaded of two choices", "[upstream]") {
  Eps eps({{1, 10, true}, {1, 0, true}});
  auto b = Balancer::make(Balance::least_request, eps, 5);
  CHECK(spread(*b, eps, 100) == std::map<std::uint32_t, int>{{1, 100}});
  eps[0].active = 0;
  eps[1].active = 0;
  eps[1].weight = 3; // equal load per weight: either is fine, both get picked
  CHECK(spread(*b, eps, 200).size() == 2);
}

TEST_CASE("ring hash is stable and moves few keys when an endpoint goes away", "[upstream]") {
  Eps eps(std::vector<EndpointLoad>(5, EndpointLoad{1, 0, true}));
  auto b = Balancer::make(Balance::hash, eps, 0);
  std::map<std::uint32_t, int> share;
  std::vector<std::uint32_t> owner(5000);
  for (std::uint64_t k = 0; k < owner.size(); ++k) {
    owner[k] = *b->pick(eps, hash_key("user-" + std::to_string(k)), {});
    CHECK(*b->pick(eps, hash_key("user-" + std::to_string(k)), {}) == owner[k]);
    share[owner[k]]++;
  }
  for (const auto& [ep, n] : share)
    CHECK(n > 600); // roughly 1000 each
  eps[2].usable = false;
  int moved = 0;
  for (std::uint64_t k = 0; k < owner.size(); ++k) {
    const auto now = *b->pick(eps, hash_key("user-" + std::to_string(k)), {});
    if (owner[k] != 2 && now != owner[k]) ++moved;
  }
  CHECK(moved == 0); // only the keys of the missing endpoint move
}

TEST_CASE("weighted random follows weights", "[upstream]") {
  Eps eps({{1, 0, true}, {3, 0, true}});
  auto b = Balancer::make(Balance::random, eps, 11);
  auto got = spread(*b, eps, 4000);
  CHECK(got[1] > 2700);
  CHECK(got[1] < 3300);
}
