// specs/gw.schema.json gives editors completion and CI a second check of TOML specs. It is
// written by hand, so these tests pin it to the reader: the reader publishes the keys it accepts
// at each level (toml_key_tables), and the schema must declare exactly those keys there.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/model/config.hpp"
#include "gw/model/method.hpp"
#include "gw/model/validate.hpp"
#include "gw/policy/kinds.hpp"
#include "gw/spec/openapi_reader.hpp"
#include "gw/spec/toml_reader.hpp"

using namespace gw;
using json = nlohmann::json;

namespace {

// Tables whose reader keys are only a minimum: a policy's other keys depend on its kind and are
// checked by the policy, so the schema leaves them to one if/then per kind, whose keys are the
// kind's row's schema (checked below).
constexpr std::string_view kOpenTables[] = {"/policies/*"};

bool is_open(std::string_view path) {
  return std::find(std::begin(kOpenTables), std::end(kOpenTables), path) != std::end(kOpenTables);
}

json load_schema() {
  std::ifstream in(GW_SOURCE_DIR "/specs/gw.schema.json");
  REQUIRE(in.good());
  return json::parse(in);
}

/// Follows local `$ref`s ("#/definitions/x", "#/$defs/x") to the schema they name.
const json& deref(const json& root, const json& s) {
  const json* cur = &s;
  for (int hops = 0; cur->is_object() && cur->contains("$ref"); ++hops) {
    const auto ref = (*cur)["$ref"].get<std::string>();
    INFO("$ref " << ref);
    // A loop of $refs would otherwise hang the test run.
    REQUIRE(hops < 64);
    REQUIRE(ref.starts_with("#"));
    cur = &root.at(json::json_pointer(ref.substr(1)));
  }
  return *cur;
}

/// Adds `s` and, recursively, the branches of its oneOf/anyOf/allOf: every schema that may
/// declare properties of the same value.
void add_alternatives(const json& root, const json& s, std::vector<const json*>& out) {
  const json& d = deref(root, s);
  if (!d.is_object()) return; // `true` / `false` schemas declare nothing
  out.push_back(&d);
  for (const char* k : {"oneOf", "anyOf", "allOf"})
    if (auto it = d.find(k); it != d.end())
      for (const auto& branch : *it)
        add_alternatives(root, branch, out);
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    path.remove_prefix(1); // the leading "/"
    const auto slash = path.find('/');
    out.emplace_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return out;
}

/// The schemas describing the value at a key-table path such as "/routes/*/headers/*". A key
/// steps into `properties`; "*" steps into the values of a map (`additionalProperties`) or the
/// elements of an array (`items`).
std::vector<const json*> resolve(const json& root, std::string_view path) {
  std::vector<const json*> cur;
  add_alternatives(root, root, cur);
  for (const auto& seg : split_path(path)) {
    std::vector<const json*> next;
    for (const json* s : cur) {
      if (seg == "*") {
        for (const char* k : {"additionalProperties", "items"})
          if (auto it = s->find(k); it != s->end() && it->is_object())
            add_alternatives(root, *it, next);
      } else if (auto props = s->find("properties"); props != s->end() && props->contains(seg)) {
        add_alternatives(root, (*props)[seg], next);
      }
    }
    cur = std::move(next);
  }
  return cur;
}

std::set<std::string> property_names(const std::vector<const json*>& schemas) {
  std::set<std::string> out;
  for (const json* s : schemas)
    if (auto props = s->find("properties"); props != s->end())
      for (const auto& [k, _] : props->items())
        out.insert(k);
  return out;
}

std::string display(std::string_view path) {
  return path.empty() ? "the top level" : std::string(path);
}

/// The strings of an `enum` found at `pointer` in the schema.
std::set<std::string> enum_at(const json& root, const char* pointer) {
  std::set<std::string> out;
  for (const auto& v : deref(root, root.at(json::json_pointer(pointer))).at("enum"))
    out.insert(v.get<std::string>());
  return out;
}

/// Walks every schema that documents a value (not the constraint-only subschemas of if, then,
/// not and dependencies, which editors never show) and reports properties without a description.
void check_descriptions(const json& root, const json& s, const std::string& where,
                        std::set<const json*>& seen) {
  if (!s.is_object() || !seen.insert(&s).second) return;
  if (auto props = s.find("properties"); props != s.end()) {
    for (const auto& [k, v] : props->items()) {
      const std::string at = where + "/properties/" + k;
      if (!v.contains("description") && !deref(root, v).contains("description"))
        FAIL_CHECK("property at " << at << " has no description for editors to show");
      check_descriptions(root, v, at, seen);
    }
  }
  for (const char* k : {"items", "additionalProperties"})
    if (auto it = s.find(k); it != s.end()) check_descriptions(root, *it, where + "/" + k, seen);
  for (const char* k : {"oneOf", "anyOf", "allOf"})
    if (auto it = s.find(k); it != s.end())
      for (std::size_t i = 0; i < it->size(); ++i)
        check_descriptions(root, (*it)[i], where + "/" + k + "/" + std::to_string(i), seen);
  if (s.contains("$ref"))
    check_descriptions(root, deref(root, s), s["$ref"].get<std::string>(), seen);
}

struct Loaded {
  Diagnostics diags;
  spec::SourceSet sources;
  spec::Document doc;
};

std::string describe(const Diagnostics& diags) {
  std::ostringstream os;
  for (const auto& d : diags)
    os << d.to_string() << "\n";
  return os.str();
}

std::vector<std::filesystem::path> samples(std::string_view prefix,
                                           const char* dir = GW_SOURCE_DIR "/tests/data/schema") {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST_CASE("JSON Schema lists exactly the keys the TOML reader accepts", "[spec]") {
  const json root = load_schema();
  for (const auto& table : spec::toml_key_tables()) {
    const std::string where = display(table.path);
    INFO("table " << where);
    const auto schemas = resolve(root, table.path);
    if (schemas.empty()) {
      FAIL_CHECK("the JSON Schema has no schema for " << where);
      continue;
    }
    const std::set<std::string> in_schema = property_names(schemas);
    const std::set<std::string> in_reader(table.keys.begin(), table.keys.end());
    for (const auto& k : in_reader)
      if (!in_schema.contains(k))
        FAIL_CHECK("key \"" << k << "\" is accepted by the TOML reader at " << where
                            << " but missing from the JSON Schema");
    if (is_open(table.path)) continue;
    for (const auto& k : in_schema)
      if (!in_reader.contains(k))
        FAIL_CHECK("key \"" << k << "\" is in the JSON Schema at " << where
                            << " but the TOML reader rejects it");
  }
}

TEST_CASE("JSON Schema rejects unknown keys wherever the TOML reader does", "[spec]") {
  const json root = load_schema();
  for (const auto& table : spec::toml_key_tables()) {
    const auto schemas = resolve(root, table.path);
    const bool closed = std::any_of(schemas.begin(), schemas.end(), [](const json* s) {
      auto it = s->find("additionalProperties");
      return it != s->end() && *it == false;
    });
    const std::string where = display(table.path);
    if (is_open(table.path) && closed)
      FAIL_CHECK("the JSON Schema closes " << where << ", where the reader accepts more keys");
    if (!is_open(table.path) && !closed)
      FAIL_CHECK("the JSON Schema lacks additionalProperties: false at "
                 << where << ", where the reader rejects unknown keys");
  }
}

TEST_CASE("JSON Schema names the policy kinds, methods and balances the validator accepts",
          "[spec]") {
  const json root = load_schema();

  std::set<std::string> kinds;
  for (const auto* k : policy::kinds())
    kinds.emplace(k->name);
  CHECK(enum_at(root, "/definitions/policy/properties/kind") == kinds);

  std::set<std::string> methods;
  for (int i = 0; i < model::kMethodCount; ++i) {
    const auto name = model::to_string(static_cast<model::Method>(i));
    // Skips "OTHER", the request-side catch-all, which a spec cannot name.
    if (model::parse_method(name)) methods.emplace(name);
  }
  CHECK(enum_at(root, "/definitions/route/properties/methods/items") == methods);

  // to_string answers "?" past the last enumerator, so a new balance is picked up here too.
  std::set<std::string> balances;
  for (int i = 0; i < 256; ++i) {
    const auto name = model::to_string(static_cast<model::Balance>(i));
    if (name == "?") break;
    balances.emplace(name);
  }
  CHECK(enum_at(root, "/definitions/upstream/properties/balance") == balances);
}

// Each kind's keys are written once, in its row (libgw/src/policy/kinds/); the schema file holds
// a copy per kind, which must not drift.
TEST_CASE("JSON Schema gives each policy kind exactly the keys of its row's schema", "[spec]") {
  const json root = load_schema();
  const json& policy = root.at("definitions").at("policy");
  json names = json::array();
  for (const auto* k : policy::kinds())
    names.push_back(k->name);
  CHECK(policy.at("properties").at("kind").at("enum") == names);

  const json& branches = policy.at("allOf");
  CHECK(branches.size() == policy::kinds().size());
  for (std::size_t i = 0; i < policy::kinds().size(); ++i) {
    const policy::KindInfo& k = *policy::kinds()[i];
    const json fragment = json::parse(k.schema);
    json keys = json::array({"kind"});
    for (const auto& [key, _] : fragment.items())
      keys.push_back(key);
    const json expected = {
        {"if",
         {{"properties", {{"kind", {{"const", k.name}}}}}, {"required", json::array({"kind"})}}},
        {"then", {{"properties", fragment}, {"propertyNames", {{"enum", keys}}}}}};
    INFO("kind " << k.name << ": the schema's allOf[" << i << "] should be " << expected.dump(2));
    REQUIRE(i < branches.size());
    json got = branches[i];
    // The enum lists the keys in the file's order; compare them as a set.
    if (got.contains("then") && got["then"].contains("propertyNames")) {
      auto& e = got["then"]["propertyNames"]["enum"];
      std::vector<std::string> sorted = e.get<std::vector<std::string>>();
      std::sort(sorted.begin(), sorted.end());
      e = sorted;
      std::vector<std::string> want = expected["then"]["propertyNames"]["enum"];
      std::sort(want.begin(), want.end());
      CHECK(e == json(want));
      got["then"].erase("propertyNames");
    }
    json want = expected;
    want["then"].erase("propertyNames");
    CHECK(got == want);
  }
}

TEST_CASE("every property in the JSON Schema has a description for editors", "[spec]") {
  const json root = load_schema();
  CHECK(root.contains("$id"));
  CHECK(root.contains("title"));
  CHECK(root.contains("description"));
  std::set<const json*> seen;
  check_descriptions(root, root, "", seen);
  for (const auto& [name, def] : root.at("definitions").items())
    check_descriptions(root, def, "/definitions/" + name, seen);
}

// The schema's sample specs are only evidence if the real reader and validator judge them the
// same way: valid-*.toml must load cleanly, invalid-*.toml must be rejected.
TEST_CASE("schema samples are judged the same by the TOML reader and validator", "[spec]") {
  const auto valid = samples("valid-");
  const auto invalid = samples("invalid-");
  REQUIRE_FALSE(valid.empty());
  REQUIRE_FALSE(invalid.empty());
  for (const auto& path : valid) {
    Loaded l;
    spec::read_toml_file(path.string(), l.sources, l.doc, l.diags);
    if (!l.diags.has_errors()) (void)model::validate(l.doc, l.diags);
    INFO(path.filename().string() << ":\n" << describe(l.diags));
    CHECK(l.diags.error_count() == 0);
  }
  for (const auto& path : invalid) {
    Loaded l;
    spec::read_toml_file(path.string(), l.sources, l.doc, l.diags);
    if (!l.diags.has_errors()) (void)model::validate(l.doc, l.diags);
    INFO(path.filename().string() << " loads without errors, but the schema rejects it");
    CHECK(l.diags.has_errors());
  }
}

// The same for the extension samples and the OpenAPI reader. The valid sample names an upstream
// and a policy it leaves to a TOML spec; the invalid ones get an upstream so that the missing
// server is not what makes them fail.
TEST_CASE("extension samples are judged the same by the OpenAPI reader and validator",
          "[spec][openapi]") {
  const char* dir = GW_SOURCE_DIR "/tests/data/openapi/extensions";
  const auto valid = samples("valid-", dir);
  const auto invalid = samples("invalid-", dir);
  REQUIRE_FALSE(valid.empty());
  REQUIRE_FALSE(invalid.empty());
  const spec::OpenApiOptions opts{{{"default", "http://127.0.0.1:9000"}}};
  for (const auto& path : valid) {
    Loaded l;
    spec::read_toml("x.toml", R"(version = 1
[upstreams.pets-v2]
endpoints = ["127.0.0.1:9200"]
[policies.audit]
kind = "headers"
request = { set = { x-audit = "1" } }
)",
                    l.sources, l.doc, l.diags);
    spec::read_openapi_file(path.string(), l.sources, l.doc, l.diags);
    if (!l.diags.has_errors()) (void)model::validate(l.doc, l.diags);
    INFO(path.filename().string() << ":\n" << describe(l.diags));
    CHECK(l.diags.error_count() == 0);
    CHECK_FALSE(l.doc.routes.empty());
  }
  for (const auto& path : invalid) {
    Loaded l;
    spec::read_openapi_file(path.string(), l.sources, l.doc, l.diags, opts);
    if (!l.diags.has_errors()) (void)model::validate(l.doc, l.diags);
    INFO(path.filename().string() << " loads without errors, but the schema rejects it:\n"
                                  << describe(l.diags));
    CHECK(l.diags.has_errors());
    CHECK(std::none_of(l.diags.begin(), l.diags.end(),
                       [](const Diagnostic& d) { return d.code == "openapi.no-host"; }));
  }
}

TEST_CASE("the extensions schema declares exactly the x-gw-* keys the OpenAPI reader knows",
          "[schema][openapi]") {
  std::ifstream in(GW_SOURCE_DIR "/specs/gw-openapi.schema.json");
  REQUIRE(in.good());
  const json schema = json::parse(in);
  const json& level = schema.at("definitions").at("level");
  std::set<std::string> declared, allowed, known;
  for (const auto& [k, _] : level.at("properties").items())
    declared.insert(k);
  for (const auto& k : level.at("propertyNames").at("then").at("enum"))
    allowed.insert(k);
  for (const auto k : spec::openapi_extensions())
    known.insert(std::string(k));
  CHECK(declared == known);
  CHECK(allowed == known);
}
