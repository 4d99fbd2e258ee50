// The table of policy kinds (gw/policy/kinds.hpp): every row complete, names unique, and each
// row's JSON Schema naming exactly the settings its reader takes.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/policy/kinds.hpp"
#include "support/spec_builder.hpp"

using namespace gw::policy;
using json = nlohmann::json;

TEST_CASE("every policy kind's row has a name, a phase, a reader, a factory and a schema",
          "[policy]") {
  REQUIRE_FALSE(kinds().empty());
  for (const KindInfo* k : kinds()) {
    REQUIRE(k != nullptr);
    INFO("kind " << k->name);
    CHECK_FALSE(k->name.empty());
    CHECK(k->compile != nullptr);
    CHECK(k->build != nullptr);
    CHECK(k->phase <= Phase::transform);
    // The schema is an object of the kind's keys, each described for editors.
    const json schema = json::parse(k->schema, nullptr, false);
    REQUIRE(schema.is_object());
    CHECK_FALSE(schema.empty());
    for (const auto& [key, s] : schema.items()) {
      INFO("key " << key);
      CHECK(s.is_object());
      CHECK(s.contains("description"));
      CHECK(key != "kind"); // common to every kind; not a setting of its own
    }
    // A composite kind refers to other policies: validate must be able to check them.
    if (k->composite) CHECK(k->references != nullptr);
    if (k->identity_need) CHECK(k->needs_identity != nullptr);
  }
}

TEST_CASE("policy kind names are unique and found exactly", "[policy]") {
  std::set<std::string_view> seen;
  for (const KindInfo* k : kinds()) {
    CHECK(seen.insert(k->name).second);
    CHECK(find_kind(k->name) == k);
  }
  CHECK(find_kind("") == nullptr);
  CHECK(find_kind("ratelimit") == nullptr);
  CHECK(find_kind("API_KEY") == nullptr);
  CHECK(find_kind("api_key ") == nullptr);
  // The built-in kinds, in the order validate lists them.
  std::vector<std::string_view> names;
  for (const KindInfo* k : kinds())
    names.push_back(k->name);
  CHECK(names == std::vector<std::string_view>{"api_key", "basic", "jwt", "access", "any_of",
                                               "rate_limit", "headers", "cors", "ext_auth", "lua"});
  CHECK(find_kind("cors")->one_per_route);
  CHECK(find_kind("jwt")->carries_claims);
  CHECK(find_kind("any_of")->composite);
}

// The reader reports a key it does not take with the list of those it does ("KIND takes: ...",
// every key it asked for): that list must be the schema's.
TEST_CASE("a policy kind's schema names exactly the settings its reader takes", "[policy]") {
  for (const KindInfo* k : kinds()) {
    INFO("kind " << k->name);
    gw::Diagnostics diags;
    Context ctx;
    ctx.policy = "p";
    CHECK_FALSE(k->compile(json{{"zzzzzzzzzzzzzzzz", true}}, ctx, diags));
    const auto* d = gwtest::find_diagnostic(diags, "spec.unknown-key");
    REQUIRE(d != nullptr);
    const std::string prefix = std::string(k->name) + " takes: ";
    REQUIRE(d->hint.starts_with(prefix));
    std::set<std::string> taken;
    std::string_view rest = std::string_view(d->hint).substr(prefix.size());
    while (!rest.empty()) {
      const auto comma = rest.find(", ");
      taken.emplace(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
    }
    taken.erase("kind");
    const json schema = json::parse(k->schema);
    std::set<std::string> in_schema;
    for (const auto& [key, _] : schema.items())
      in_schema.insert(key);
    CHECK(taken == in_schema);
  }
}
