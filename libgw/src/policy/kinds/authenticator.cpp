// The authentication kinds' shared half: how one answers on its own, and how identities merge.
#include "authenticator.hpp"

namespace gw::policy {

void Authenticator::contribute(RouteFacts& facts) const {
  std::vector<std::string> names;
  protect(names);
  for (auto& n : names)
    add_unique(facts.protect, std::move(n));
  for (const auto& c : credentials())
    if (c.in == Credential::In::query) add_unique(facts.secret_params, c.name);
  add_unique(facts.challenges, challenge(Outcome{}));
}

Verdict Authenticator::on_request(FilterContext& ctx) const {
  Outcome o = authenticate(*ctx.request, ctx.now_s);
  if (o.status != Status::ok) {
    HeaderList challenges;
    challenges.emplace_back("www-authenticate", challenge(o));
    return Verdict::respond(
        unauthorized(o.status == Status::invalid ? o.why : std::string(), std::move(challenges)));
  }
  apply(o, ctx.edits);
  Identity got;
  got.authenticated = true;
  got.consumer = std::move(o.consumer);
  got.claims = std::move(o.claims);
  got.scopes = scopes_of(got.claims);
  merge(ctx.identity, std::move(got));
  return Verdict::proceed();
}

LocalReply Authenticator::unauthorized(const std::string& why, HeaderList challenges) {
  LocalReply r;
  r.kind = wire::ErrorKind::unauthorized;
  r.message = why.empty() ? "authentication required" : "authentication failed: " + why;
  r.headers = std::move(challenges);
  return r;
}

void Authenticator::merge(Identity& id, Identity&& got) {
  if (!got.authenticated) return;
  if (!id.authenticated) {
    id = std::move(got);
  } else if (id.claims.is_null() && !got.claims.is_null()) {
    id.claims = std::move(got.claims); // e.g. an API key, then a JWT: keep the token's claims
    id.scopes = std::move(got.scopes);
  }
}

} // namespace gw::policy
