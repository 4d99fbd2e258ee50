#include <catch2/catch.hpp>

#include "gw/core/text.hpp"
#include "gw/core/units.hpp"

using namespace gw;

TEST_CASE("durations parse with ms, s, m and h units", "[core]") {
  CHECK(units::parse_duration("250ms")->count() == 250);
  CHECK(units::parse_duration("5s")->count() == 5000);
  CHECK(units::parse_duration("1.5s")->count() == 1500);
  CHECK(units::parse_duration("1m30s")->count() == 90000);
  CHECK(units::parse_duration("2h")->count() == 7'200'000);
  CHECK(units::parse_duration("0s")->count() == 0);
}

TEST_CASE("bad durations are rejected with a reason", "[core]") {
  for (const char* bad :
       {"", "5", "5 s", "-1s", "5sec", "1.s", "s", "1.0001s", "30d", "9999999h"}) {
    INFO(bad);
    auto d = units::parse_duration(bad);
    REQUIRE_FALSE(d);
    CHECK_FALSE(d.error().message.empty());
  }
  CHECK_THAT(units::parse_duration("5").error().message, Catch::Contains("missing unit"));
}

TEST_CASE("durations format in their shortest exact form", "[core]") {
  CHECK(units::format_duration(units::Millis(250)) == "250ms");
  CHECK(units::format_duration(units::Millis(1500)) == "1.5s");
  CHECK(units::format_duration(units::Millis(90000)) == "1m30s");
  CHECK(units::format_duration(units::Millis(3'600'000)) == "1h");
  for (long ms : {1L, 999L, 1000L, 1001L, 61'000L, 3'601'500L})
    CHECK(units::parse_duration(units::format_duration(units::Millis(ms)))->count() == ms);
}

TEST_CASE("sizes parse decimal and binary units", "[core]") {
  CHECK(*units::parse_size("100") == 100);
  CHECK(*units::parse_size("64KiB") == 65536);
  CHECK(*units::parse_size("10MB") == 10'000'000);
  CHECK(*units::parse_size("1GiB") == (1ULL << 30));
  CHECK_FALSE(units::parse_size("10 MB"));
  CHECK_FALSE(units::parse_size("-1"));
  CHECK_FALSE(units::parse_size("1TB"));
  CHECK_FALSE(units::parse_size("99999999999GiB"));
  CHECK(units::format_size(1 << 20) == "1MiB");
}

TEST_CASE("suggestions find plausible typos only", "[core]") {
  const std::vector<std::string> keys{"upstream", "timeout", "methods"};
  CHECK(text::suggest("upstraem", keys) == "upstream");
  CHECK(text::suggest("method", keys) == "methods");
  CHECK_FALSE(text::suggest("colour", keys));
}

TEST_CASE("cookie values are found by exact name in a Cookie header", "[core]") {
  using gw::text::cookie_value;
  CHECK(cookie_value("sid=abc; theme=dark", "theme") == "dark");
  CHECK(cookie_value("sid=abc;theme=dark", "sid") == "abc");
  CHECK(cookie_value("sid=a=b; x=1", "sid") == "a=b"); // '=' inside a value
  CHECK(cookie_value("sid=; x=1", "sid") == "");
  CHECK_FALSE(cookie_value("SID=abc", "sid"));          // names are case-sensitive
  CHECK_FALSE(cookie_value("xsid=abc; sidx=1", "sid")); // whole names only
  CHECK_FALSE(cookie_value("flag; sid", "sid"));        // no '=': not a pair
  CHECK_FALSE(cookie_value("", "sid"));
}

TEST_CASE("a Cookie header loses just the named cookies", "[core]") {
  const std::vector<std::string> drop{"apikey", "sid"};
  auto without = [&](std::string_view h) {
    std::string out;
    gw::text::append_cookies_without(out, h, drop);
    return out;
  };
  CHECK(without("theme=dark; apikey=k1;lang=en") == "theme=dark; lang=en");
  CHECK(without("apikey=k1; sid=2") == "");
  CHECK(without("APIKEY=k1; sidx=1") == "APIKEY=k1; sidx=1"); // exact, whole names
  CHECK(without("flag;  apikey=k; x=a=b; ") == "flag; x=a=b");
  CHECK(without("") == "");
}
