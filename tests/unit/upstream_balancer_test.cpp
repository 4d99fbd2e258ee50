#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "gw/upstream/balancer.hpp"

using namespace gw::upstream;
using gw::model::Balance;

namespace {
/// Endpoint loads as the balancer sees them (pointers), backed by a vector the test edits, and
/// the endpoints' addresses (10.0.0.1:80, 10.0.0.2:80, ... unless given).
struct Eps {
  std::vector<EndpointLoad> v;
  std::vector<const EndpointLoad*> p;
  std::vector<std::string> names;
  std::vector<std::string_view> ids;
  explicit Eps(std::vector<EndpointLoad> in, std::vector<std::string> addresses = {})
      : v(std::move(in)), names(std::move(addresses)) {
    for (std::size_t i = names.size(); i < v.size(); ++i)
      names.push_back("10.0.0." + std::to_string(i + 1) + ":80");
    for (const auto& e : v)
      p.push_back(&e);
    for (const auto& n : names)
      ids.push_back(n);
  }
  EndpointLoad& operator[](std::size_t i) { return v[i]; }
  operator Loads() const { return p; }
};

std::unique_ptr<Balancer> make(Balance kind, const Eps& eps, std::uint64_t seed) {
  return Balancer::make(kind, eps, eps.ids, seed);
}

/// A hash ring over `addresses` (weight 1 unless given).
struct Ring {
  Eps eps;
  std::unique_ptr<Balancer> b;
  explicit Ring(const std::vector<std::string>& addresses,
                const std::vector<std::uint32_t>& weights = {})
      : eps(loads(addresses.size(), weights), addresses), b(make(Balance::hash, eps, 0)) {}
  static std::vector<EndpointLoad> loads(std::size_t n, const std::vector<std::uint32_t>& w) {
    std::vector<EndpointLoad> out(n, EndpointLoad{1, 0, true});
    for (std::size_t i = 0; i < w.size() && i < n; ++i)
      out[i].weight = w[i];
    return out;
  }
  /// The address that `key` goes to.
  std::string owner(std::uint64_t key) const { return eps.names[*b->pick(eps, key, {})]; }
};

constexpr int kKeys = 5000;
std::uint64_t user_key(int k) {
  return hash_key("user-" + std::to_string(k));
}

std::map<std::uint32_t, int> spread(Balancer& b, Eps& eps, int n, std::uint64_t key = 0) {
  std::map<std::uint32_t, int> out;
  for (int i = 0; i < n; ++i)
    out[*b.pick(eps, key, {})]++;
  return out;
}
} // namespace

TEST_CASE("smooth weighted round robin interleaves by weight", "[upstream]") {
  Eps eps({{5, 0, true}, {1, 0, true}, {1, 0, true}});
  auto b = make(Balance::round_robin, eps, 1);
  std::string seq;
  for (int i = 0; i < 7; ++i)
    seq += static_cast<char>('a' + *b->pick(eps, 0, {}));
  CHECK(seq == "aabacaa"); // nginx's sequence for weights 5,1,1
  CHECK(spread(*b, eps, 700) == std::map<std::uint32_t, int>{{0, 500}, {1, 100}, {2, 100}});
}

TEST_CASE("unusable endpoints are skipped, and none usable gives nothing", "[upstream]") {
  Eps eps({{1, 0, false}, {1, 0, true}});
  for (auto kind : {Balance::round_robin, Balance::least_request, Balance::hash, Balance::random}) {
    auto b = make(kind, eps, 7);
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
    auto b = make(kind, eps, 3);
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
  auto b = make(Balance::least_request, eps, 5);
  CHECK(spread(*b, eps, 100) == std::map<std::uint32_t, int>{{1, 100}});
  eps[0].active = 0;
  eps[1].active = 0;
  eps[1].weight = 3; // equal load per weight: either is fine, both get picked
  CHECK(spread(*b, eps, 200).size() == 2);
}

TEST_CASE("ring hash is stable and moves no other keys when an endpoint is unusable",
          "[upstream]") {
  Eps eps(std::vector<EndpointLoad>(5, EndpointLoad{1, 0, true}));
  auto b = make(Balance::hash, eps, 0);
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

TEST_CASE("ring hash: removing an endpoint from the list moves only its keys", "[upstream]") {
  // The spec loses its third endpoint: the two after it shift up the list.
  const Ring before({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"});
  const Ring after({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.4:80", "10.0.0.5:80"});
  int on_removed = 0, moved = 0;
  for (int k = 0; k < kKeys; ++k) {
    const auto was = before.owner(user_key(k));
    const auto now = after.owner(user_key(k));
    if (was == "10.0.0.3:80")
      ++on_removed;
    else if (now != was)
      ++moved;
  }
  INFO(on_removed << " keys were on the removed endpoint");
  CHECK(on_removed > kKeys / 10); // it had a share (about a fifth)
  CHECK(moved == 0);              // every other key stays where it was
}

TEST_CASE("ring hash: an added endpoint takes about its share, from the others only",
          "[upstream]") {
  const Ring before({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"});
  const Ring after(
      {"10.0.0.1:80", "10.0.0.9:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"});
  int to_new = 0, elsewhere = 0;
  for (int k = 0; k < kKeys; ++k) {
    const auto now = after.owner(user_key(k));
    if (now == "10.0.0.9:80")
      ++to_new;
    else if (now != before.owner(user_key(k)))
      ++elsewhere;
  }
  CHECK(elsewhere == 0);
  // A sixth is 833 keys; 100 points per endpoint keep a share within about 30% of its mean.
  CHECK(to_new > kKeys / 10);
  CHECK(to_new < kKeys / 4);
}

TEST_CASE("ring hash: the same endpoints in another order give the same ring", "[upstream]") {
  const Ring a({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "[::1]:8080"});
  const Ring b({"[::1]:8080", "10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80"});
  int differ = 0;
  for (int k = 0; k < kKeys; ++k)
    differ += a.owner(user_key(k)) != b.owner(user_key(k));
  CHECK(differ == 0);
}

TEST_CASE("ring hash: a heavier endpoint gains keys from the others and keeps its own",
          "[upstream]") {
  const Ring before({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"});
  const Ring after({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}, {1, 3, 1});
  int gained = 0, other = 0, share = 0;
  for (int k = 0; k < kKeys; ++k) {
    const auto was = before.owner(user_key(k)), now = after.owner(user_key(k));
    share += now == "10.0.0.2:80";
    if (now == was) continue;
    if (now == "10.0.0.2:80")
      ++gained;
    else
      ++other;
  }
  CHECK(other == 0); // keys only move to the endpoint whose weight grew
  CHECK(gained > 0);
  CHECK(share > kKeys / 2); // 3 of 5 units of weight: about 60%
  CHECK(share < kKeys * 7 / 10);
}

TEST_CASE("weighted random follows weights", "[upstream]") {
  Eps eps({{1, 0, true}, {3, 0, true}});
  auto b = make(Balance::random, eps, 11);
  auto got = spread(*b, eps, 4000);
  CHECK(got[1] > 2700);
  CHECK(got[1] < 3300);
}
