// any_of: alternatives of authentication policies (each option: all its policies, and scopes);
// the first option that passes names the caller, and an empty option lets anonymous callers in.
// Composite: built after the others, it runs their authenticators itself.
#include <algorithm>

#include "gw/policy/kinds.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/authenticator.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "any_of";

constexpr std::string_view kSchema = R"json({
  "options": {
    "description": "Alternatives, the first that authenticates wins; an option with no policies lets anonymous callers in.",
    "type": "array",
    "items": {
      "type": "object",
      "properties": {
        "policies": {
          "description": "Authentication policies (api_key, basic, jwt) that must all pass.",
          "type": "array", "items": {"type": "string"}
        },
        "scopes": {
          "description": "Scopes required with this option.",
          "type": "array", "items": {"type": "string"}
        }
      },
      "additionalProperties": false
    }
  }
})json";

AnyOf read(Fields& f, json*) {
  AnyOf a;
  const json* opts = f.get("options");
  if (!opts || !opts->is_array() || opts->empty()) {
    f.error("options", "options must be a non-empty array of { policies = [...], scopes = [...] }");
    return a;
  }
  std::size_t i = 0;
  for (const auto& o : *opts) {
    ++i;
    AnyOf::Option opt;
    bool good = o.is_object();
    if (good) {
      for (auto it = o.begin(); it != o.end(); ++it) {
        const bool list =
            it.value().is_array() && std::all_of(it.value().begin(), it.value().end(),
                                                 [](const json& e) { return e.is_string(); });
        if (it.key() == "policies" && list)
          opt.policies = it.value().get<std::vector<std::string>>();
        else if (it.key() == "scopes" && list)
          opt.scopes = it.value().get<std::vector<std::string>>();
        else
          good = false;
      }
    }
    if (!good) {
      f.error("options", "options[" + std::to_string(i) +
                             "] must be { policies = [\"name\", ...], scopes = [\"scope\", ...] }");
      continue;
    }
    a.options.push_back(std::move(opt));
  }
  return a;
}

/// Holds its options' authenticators, which the PolicySet owns. Immutable; any thread.
class AnyOfFilter final : public Filter {
public:
  struct Option {
    std::vector<const Authenticator*> all; // every one must pass
    std::vector<std::string> scopes;
  };
  explicit AnyOfFilter(std::vector<Option> options) : options_(std::move(options)) {}

  void contribute(RouteFacts& facts) const override {
    for (const auto& opt : options_)
      for (const auto* a : opt.all)
        a->contribute(facts);
  }

  Verdict on_request(FilterContext& ctx) const override {
    bool forbidden = false;
    HeaderList challenges;
    std::string why;
    for (const auto& opt : options_) {
      Identity got;
      std::vector<std::pair<const Authenticator*, Authenticator::Outcome>> outcomes;
      bool all_ok = true;
      for (const auto* a : opt.all) {
        auto o = a->authenticate(*ctx.request, ctx.now_s);
        if (o.status != Authenticator::Status::ok) {
          all_ok = false;
          if (o.status == Authenticator::Status::invalid && why.empty()) why = o.why;
          challenges.emplace_back("www-authenticate", a->challenge(o));
          break;
        }
        if (!got.authenticated) got.consumer = o.consumer;
        got.authenticated = true;
        if (!o.claims.is_null()) got.claims = o.claims;
        outcomes.emplace_back(a, std::move(o));
      }
      if (!all_ok) continue;
      got.scopes = scopes_of(got.claims);
      if (!has_all(got.scopes, opt.scopes)) {
        forbidden = true;
        continue;
      }
      // Only the option that passed changes the request.
      for (const auto& [a, o] : outcomes)
        a->apply(o, ctx.edits);
      Authenticator::merge(ctx.identity, std::move(got));
      return Verdict::proceed();
    }
    if (!forbidden)
      return Verdict::respond(Authenticator::unauthorized(why, std::move(challenges)));
    LocalReply r;
    r.kind = wire::ErrorKind::forbidden;
    r.message = "the credentials lack a required scope";
    return Verdict::respond(std::move(r));
  }

private:
  std::vector<Option> options_;
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<AnyOf>(kName, &read, settings, ctx, diags);
}

Result<std::shared_ptr<const Filter>> build(const BuildContext& ctx) {
  auto s = parse<AnyOf>(ctx.settings, ctx.policy);
  if (!s) return std::unexpected(s.error());
  std::vector<AnyOfFilter::Option> options;
  for (const auto& opt : s->options) {
    AnyOfFilter::Option o;
    o.scopes = opt.scopes;
    for (const auto& n : opt.policies) {
      const Filter* f = ctx.find ? ctx.find(n) : nullptr;
      const auto* a = dynamic_cast<const Authenticator*>(f);
      if (!a)
        return fail(errc::invalid_argument, "policy " + text::quote(ctx.policy) +
                                                ": option names " + n +
                                                ", not an authentication policy");
      o.all.push_back(a);
    }
    options.push_back(std::move(o));
  }
  return std::make_shared<const AnyOfFilter>(std::move(options));
}

/// The policies its options name, as written (validate checks each).
std::vector<std::string> references(const json& canonical) {
  std::vector<std::string> out;
  auto s = parse<AnyOf>(canonical.dump());
  if (!s) return out;
  for (const auto& opt : s->options)
    out.insert(out.end(), opt.policies.begin(), opt.policies.end());
  return out;
}

} // namespace

template <>
Result<AnyOf> parse<AnyOf>(std::string_view canonical, std::string_view policy) {
  return parse_with<AnyOf>(kName, &read, canonical, policy);
}

constexpr KindInfo kAnyOfKind{
    .name = kName,
    .phase = Phase::authenticate,
    .authenticates = true,
    .composite = true,
    .schema = kSchema,
    .compile = &compile,
    .build = &build,
    .needs_identity = nullptr,
    .references = &references,
    .carries_claims = true,
};

} // namespace gw::policy
