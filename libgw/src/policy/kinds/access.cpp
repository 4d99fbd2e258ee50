// access: what an authenticated caller may do (scopes, claims, consumer names): 403 otherwise,
// and 401 for a caller no authentication policy named.
#include <algorithm>

#include "gw/policy/kinds.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/authenticator.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "access";

constexpr std::string_view kSchema = R"json({
  "scopes": {
    "description": "Scopes the caller must all have (from the token's `scope` or `scp`).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "claims": {
    "description": "Claim values required, CLAIM = [\"allowed\", ...] (or one value).",
    "type": "object",
    "additionalProperties": {"type": ["string", "array"], "items": {"type": "string"}}
  },
  "consumers": {
    "description": "Only these consumers get in (403 otherwise).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "deny_consumers": {
    "description": "These consumers are refused with 403.",
    "type": ["string", "array"], "items": {"type": "string"}
  }
})json";

Access read(Fields& f, json*) {
  Access a;
  if (auto v = f.strings("scopes")) a.scopes = *v;
  if (const json* c = f.get("claims")) {
    if (!c->is_object()) {
      f.error("claims", "claims must be a table: claim = \"value\" or [\"values\"]");
    } else {
      for (auto it = c->begin(); it != c->end(); ++it) {
        std::vector<std::string> values;
        if (it.value().is_string())
          values.push_back(it.value().get<std::string>());
        else if (it.value().is_array() && std::all_of(it.value().begin(), it.value().end(),
                                                      [](const json& e) { return e.is_string(); }))
          for (const auto& e : it.value())
            values.push_back(e.get<std::string>());
        else {
          f.error("claims", "claims." + it.key() + " must be a string or an array of strings");
          continue;
        }
        a.claims.emplace_back(it.key(), std::move(values));
      }
    }
  }
  if (auto v = f.strings("consumers")) a.consumers = *v;
  if (auto v = f.strings("deny_consumers")) a.deny_consumers = *v;
  if (a.scopes.empty() && a.claims.empty() && a.consumers.empty() && a.deny_consumers.empty() &&
      f.ok())
    f.error("", "checks nothing: give scopes, claims, consumers or deny_consumers");
  return a;
}

class AccessFilter final : public Filter {
public:
  explicit AccessFilter(Access s) : s_(std::move(s)) {}

  Verdict on_request(FilterContext& ctx) const override {
    const Identity& id = ctx.identity;
    if (!id.authenticated) {
      // An anonymous option (any_of) let the caller through; a 401 still says how to
      // authenticate (RFC 9110 §15.5.2), with every way in the route offers.
      HeaderList challenges;
      if (ctx.facts)
        for (const auto& c : ctx.facts->challenges)
          challenges.emplace_back("www-authenticate", c);
      return Verdict::respond(Authenticator::unauthorized("", std::move(challenges)));
    }
    std::string missing;
    if (!has_all(id.scopes, s_.scopes)) missing = "a required scope";
    for (const auto& [claim, values] : s_.claims) {
      auto it = id.claims.is_object() ? id.claims.find(claim) : id.claims.end();
      bool ok = false;
      if (id.claims.is_object() && it != id.claims.end()) {
        if (it->is_array()) {
          for (const auto& v : *it)
            ok = ok || (v.is_string() && std::find(values.begin(), values.end(),
                                                   v.get<std::string>()) != values.end());
        } else {
          ok = std::find(values.begin(), values.end(), claim_text(*it)) != values.end();
        }
      }
      if (!ok && missing.empty()) missing = "claim " + claim;
    }
    if (!s_.consumers.empty() &&
        std::find(s_.consumers.begin(), s_.consumers.end(), id.consumer) == s_.consumers.end())
      missing = "an allowed consumer";
    if (std::find(s_.deny_consumers.begin(), s_.deny_consumers.end(), id.consumer) !=
        s_.deny_consumers.end())
      missing = "an allowed consumer";
    if (missing.empty()) return Verdict::proceed();
    LocalReply r;
    r.kind = wire::ErrorKind::forbidden;
    r.message = "access denied: the caller lacks " + missing;
    return Verdict::respond(std::move(r));
  }

private:
  Access s_;
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<Access>(kName, &read, settings, ctx, diags);
}

/// Every access policy judges an authenticated caller.
bool needs_identity(const json&) {
  return true;
}

} // namespace

template <>
Result<Access> parse<Access>(std::string_view canonical, std::string_view policy) {
  return parse_with<Access>(kName, &read, canonical, policy);
}

constexpr KindInfo kAccessKind{
    .name = kName,
    .phase = Phase::access,
    .authenticates = false,
    .composite = false,
    .schema = kSchema,
    .compile = &compile,
    .build = &build_from<Access, AccessFilter>,
    .needs_identity = &needs_identity,
    .references = nullptr,
};

} // namespace gw::policy
