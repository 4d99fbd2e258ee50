#include <catch2/catch.hpp>

#include <chrono>

#include "gw/runtime/key_source.hpp"

using namespace std::chrono_literals;

// Port 1 on loopback refuses at once, so each fetcher's first fetch fails fast; what is checked
// here is which policies share a fetcher.
TEST_CASE("JWKS fetchers are shared per URL and refresh interval", "[runtime]") {
  const std::string url = "http://127.0.0.1:1/jwks.json";
  auto a = gw::runtime::key_source(url, false, gw::units::Millis(5min));
  auto b = gw::runtime::key_source(url, false, gw::units::Millis(5min));
  auto faster = gw::runtime::key_source(url, false, gw::units::Millis(30s));
  auto discovery = gw::runtime::key_source(url, true, gw::units::Millis(5min));
  CHECK(a == b);
  CHECK(a != faster); // a policy asking for a shorter interval gets it
  CHECK(a != discovery);
  // A failed fetch leaves no keys (tokens are refused), not a crash or a hang.
  const auto keys = a->keys();
  CHECK((keys == nullptr || keys->empty()));
}
