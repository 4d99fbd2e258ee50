// rate_limit: GCRA token buckets, local to this gwd (buckets.hpp) or shared by every gwd through
// a Redis server (the proxy performs the take: Verdict::await(RedisTake)).
#include <algorithm>
#include <charconv>
#include <chrono>

#include <arpa/inet.h>

#include "gw/policy/kinds.hpp"
#include "gw/policy/registry.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/authenticator.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "rate_limit";

constexpr std::string_view kSchema = R"json({
  "rate": {
    "description": "Requests per window, e.g. \"100/s\", \"6000/m\", \"10/h\", \"5/10s\".",
    "type": "string"
  },
  "burst": {
    "description": "Bucket size (default: the count of `rate`).",
    "type": "integer", "minimum": 1
  },
  "key": {
    "description": "What a bucket is per: client_ip (default), consumer, route, global, header:NAME, claim:NAME.",
    "type": "string"
  },
  "store": {
    "description": "local (one gwd, shared by its workers) or redis (shared by every gwd using that Redis).",
    "type": "string", "enum": ["local", "redis"]
  },
  "redis": {
    "description": "Redis address IP:port (an IP literal; default port 6379).",
    "type": "string"
  },
  "redis_timeout": {
    "description": "How long to wait for Redis, e.g. \"100ms\" (default).",
    "type": "string"
  },
  "on_redis_error": {
    "description": "allow (fail open, default) or deny (fail closed, 503) when Redis cannot answer.",
    "type": "string", "enum": ["allow", "deny"]
  }
})json";

RateLimit read(Fields& f, json*) {
  RateLimit r;
  if (auto rate = f.str("rate")) {
    // "100/s", "6000/m", "10/h", or "5/10s"
    const auto slash = rate->find('/');
    std::uint64_t n = 0;
    const auto* b = rate->data();
    const auto res = std::from_chars(b, b + (slash == std::string::npos ? rate->size() : slash), n);
    bool good = slash != std::string::npos && res.ptr == b + slash && n > 0 && n <= 1'000'000'000;
    if (good) {
      std::string per = rate->substr(slash + 1);
      if (per == "s" || per == "m" || per == "h") per = "1" + per;
      auto d = units::parse_duration(per);
      good = d && d->count() > 0;
      if (good) r.per = *d;
    }
    if (!good)
      f.error("rate", "rate " + text::quote(*rate) +
                          " must be COUNT/UNIT: \"100/s\", \"6000/m\", \"10/h\" or \"5/10s\"");
    r.count = n;
  } else {
    f.error("rate", "has no rate (\"100/s\")", "spec.missing-key");
  }
  if (auto v = f.integer("burst", 1, 1'000'000'000))
    r.burst = static_cast<std::uint64_t>(*v);
  else
    r.burst = r.count;
  if (auto key = f.str("key")) {
    if (*key == "client_ip")
      r.key = RateLimit::Key::client_ip;
    else if (*key == "consumer")
      r.key = RateLimit::Key::consumer;
    else if (*key == "route")
      r.key = RateLimit::Key::route;
    else if (*key == "global")
      r.key = RateLimit::Key::global;
    else if (key->starts_with("header:") && text::is_token(key->substr(7))) {
      r.key = RateLimit::Key::header;
      r.key_name = text::lower(key->substr(7));
    } else if (key->starts_with("claim:") && key->size() > 6) {
      r.key = RateLimit::Key::claim;
      r.key_name = key->substr(6);
    } else {
      f.error("key", "key " + text::quote(*key) +
                         " must be client_ip, consumer, route, global, header:NAME or claim:NAME");
    }
  }
  if (auto store = f.str("store")) {
    if (*store == "redis")
      r.redis = true;
    else if (*store != "local")
      f.error("store", "store must be \"local\" or \"redis\"");
  }
  if (auto addr = f.str("redis")) {
    // An IP literal: hiredis resolves a host name with a blocking getaddrinfo, which must never
    // sit on a worker's request path. IPv6 goes in brackets ("[::1]:6379"); the port defaults
    // to 6379.
    std::string_view a = *addr, host = a, port_text;
    bool v6 = false, good = true;
    if (a.starts_with('[')) {
      const auto close = a.find(']');
      v6 = true;
      good = close != std::string_view::npos &&
             (close + 1 == a.size() || (a[close + 1] == ':' && close + 2 < a.size()));
      if (good) {
        host = a.substr(1, close - 1);
        if (close + 1 < a.size()) port_text = a.substr(close + 2);
      }
    } else if (const auto colon = a.rfind(':'); colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port_text = a.substr(colon + 1);
      good = !port_text.empty();
    }
    unsigned port = r.redis_port;
    if (good && !port_text.empty()) {
      const auto* end = port_text.data() + port_text.size();
      const auto res = std::from_chars(port_text.data(), end, port);
      good = res.ec == std::errc{} && res.ptr == end && port > 0 && port < 65536;
    }
    unsigned char ip[16];
    good = good && ::inet_pton(v6 ? AF_INET6 : AF_INET, std::string(host).c_str(), ip) == 1;
    if (!good)
      f.error("redis", "redis must be \"IP:PORT\" with an IP address, not a host name "
                       "(\"127.0.0.1:6379\", \"[::1]:6379\")");
    r.redis_host = host;
    r.redis_port = static_cast<std::uint16_t>(port);
    if (!f.has("store")) r.redis = true;
  }
  if (r.redis && r.redis_host.empty() && f.ok())
    f.error("store", "store = \"redis\" needs redis = \"IP:PORT\"");
  if (auto v = f.duration("redis_timeout")) r.redis_timeout = *v;
  if (auto v = f.str("on_redis_error")) {
    if (*v == "allow")
      r.fail_open = true;
    else if (*v == "deny")
      r.fail_open = false;
    else
      f.error("on_redis_error",
              "on_redis_error must be \"allow\" (fail open) or \"deny\" (fail closed)");
  }
  if (!r.redis && (f.has("redis_timeout") || f.has("on_redis_error")) && f.ok())
    f.error(f.has("redis_timeout") ? "redis_timeout" : "on_redis_error",
            "applies only with store = \"redis\"");
  if (r.count && r.interval_us() == 0)
    f.error("rate", "rate is too high: more than one request per microsecond");
  // The buckets keep times in nanoseconds: a bucket that takes more than a year to fill is surely
  // a mistake, and far beyond that burst × interval overflows.
  constexpr std::int64_t kMaxBucketUs = 366LL * 24 * 3600 * 1'000'000;
  if (r.count && r.burst && r.interval_us() > 0 &&
      r.burst > static_cast<std::uint64_t>(kMaxBucketUs / r.interval_us()))
    f.error("burst",
            "burst " + std::to_string(r.burst) + " at this rate takes more than a year to refill");
  return r;
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// One rate-limit policy. Immutable (its local buckets are shared and thread-safe); any thread.
class RateLimitFilter final : public Filter {
public:
  RateLimitFilter(std::string name, RateLimit s, std::shared_ptr<Buckets> local,
                  std::int64_t (*clock)())
      : name_(std::move(name)), s_(std::move(s)), local_(std::move(local)), clock_(clock) {
    const auto window_s = std::max<std::int64_t>(1, (s_.per.count() + 999) / 1000);
    policy_field_ =
        qstr(name_) + ";q=" + std::to_string(s_.count) + ";w=" + std::to_string(window_s);
    field_prefix_ = qstr(name_) + ";r=";
    if (s_.redis) {
      redis_prefix_ = "gw:rl:" + name_ + ":";
      redis_server_ = s_.redis_host + ":" + std::to_string(s_.redis_port) + "/" +
                      std::to_string(s_.redis_timeout.count());
    }
  }

  Verdict on_request(FilterContext& ctx) const override {
    std::string key = bucket_key(ctx);
    if (local_) return result(ctx, local_->take(key, clock_));
    RedisTake t;
    t.server = redis_server_;
    t.host = s_.redis_host;
    t.port = s_.redis_port;
    t.timeout = s_.redis_timeout;
    t.key = redis_prefix_ + key;
    t.interval_us = s_.interval_us();
    t.burst = static_cast<std::int64_t>(s_.burst);
    return Verdict::await(std::move(t));
  }

  Verdict resume(FilterContext& ctx, IoResult&& io) const override {
    const auto* r = std::get_if<RedisReply>(&io);
    if (!r || !r->ok) {
      if (ctx.counters) ++ctx.counters->rate_limit_store_errors;
      // The error names the server: "redis HOST:PORT: ...".
      ctx.note("rate limit " + name_ + ": " + (r ? r->error : "not a Redis reply") + " (failing " +
                   (s_.fail_open ? "open" : "closed") + ")",
               /*limited=*/true); // a dead Redis must not flood the log
      if (s_.fail_open) return Verdict::proceed();
      LocalReply down;
      down.kind = wire::ErrorKind::policy_unavailable;
      down.message = "rate limit " + name_ + " cannot be checked";
      return Verdict::respond(std::move(down));
    }
    Take t;
    t.allowed = r->allowed;
    t.remaining = r->remaining;
    t.retry_after_ms = r->retry_after_ms;
    t.reset_ms = r->reset_ms;
    return result(ctx, t);
  }

private:
  /// Values a caller chooses (a header, a claim) and addresses are tagged apart, so nobody can
  /// name a bucket that belongs to another kind of key (X-Tenant: <someone's address>).
  std::string bucket_key(const FilterContext& ctx) const {
    const RequestView& req = *ctx.request;
    const Identity& id = ctx.identity;
    const auto by_ip = [&] { return "ip:" + std::string(req.client_ip()); };
    switch (s_.key) {
    case RateLimit::Key::client_ip:
      return by_ip();
    case RateLimit::Key::consumer: // anonymous (any_of's empty option): by address, as below
      return id.consumer.empty() ? by_ip() : "c:" + id.consumer;
    case RateLimit::Key::route:
      return std::string(ctx.route);
    case RateLimit::Key::global:
      return {};
    case RateLimit::Key::header:
      // A missing header must not share one bucket with all others.
      if (auto v = req.header(s_.key_name)) return "h:" + std::string(*v);
      return by_ip();
    case RateLimit::Key::claim: {
      auto it = id.claims.is_object() ? id.claims.find(s_.key_name) : id.claims.end();
      return id.claims.is_object() && it != id.claims.end() ? "j:" + claim_text(*it) : by_ip();
    }
    }
    return by_ip();
  }

  /// The RateLimit fields (draft-ietf-httpapi-ratelimit-headers) go on every answer: the
  /// response when allowed, the 429 when not (the proxy adds response_add to it as well).
  Verdict result(FilterContext& ctx, const Take& t) const {
    auto append_fields = [&](HeaderList& out) {
      out.emplace_back("ratelimit-policy", policy_field_);
      std::string v = field_prefix_;
      v += std::to_string(t.remaining);
      v += ";t=";
      v += std::to_string((t.reset_ms + 999) / 1000);
      out.emplace_back("ratelimit", std::move(v));
    };
    if (t.allowed) {
      append_fields(ctx.edits.response_add);
      return Verdict::proceed();
    }
    LocalReply r;
    r.kind = wire::ErrorKind::rate_limited;
    r.message = "rate limit " + name_ + " exceeded";
    r.headers.emplace_back(
        "retry-after", std::to_string(std::max<std::int64_t>(1, (t.retry_after_ms + 999) / 1000)));
    append_fields(r.headers);
    return Verdict::respond(std::move(r));
  }

  std::string name_;
  RateLimit s_;
  std::shared_ptr<Buckets> local_; // null for Redis
  std::int64_t (*clock_)();
  std::string policy_field_; // RateLimit-Policy's value, built once
  std::string field_prefix_; // RateLimit's value up to the remaining count: "\"NAME\";r="
  std::string redis_prefix_; // "gw:rl:NAME:"
  std::string redis_server_; // "HOST:PORT/TIMEOUT_MS": names a worker's connection for it
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<RateLimit>(kName, &read, settings, ctx, diags);
}

Result<std::shared_ptr<const Filter>> build(const BuildContext& ctx) {
  auto s = parse<RateLimit>(ctx.settings, ctx.policy);
  if (!s) return std::unexpected(s.error());
  std::shared_ptr<Buckets> local;
  std::int64_t (*clock)() = &steady_ns;
  if (!s->redis) {
    if (!ctx.registry || !ctx.registry->buckets)
      return fail(errc::unsupported,
                  "policy " + text::quote(ctx.policy) + ": rate limits need gwd");
    // Same name and settings: the same buckets, across reloads.
    local = ctx.registry->buckets->get(std::string(ctx.policy) + "\n" + std::string(ctx.settings),
                                       s->interval_us(), static_cast<std::int64_t>(s->burst));
    if (ctx.registry->clock_ns) clock = ctx.registry->clock_ns;
  }
  return std::make_shared<const RateLimitFilter>(std::string(ctx.policy), std::move(*s),
                                                 std::move(local), clock);
}

/// The key of a bucket by consumer or by claim names the caller.
RateLimit::Key key_of(const json& canonical) {
  auto s = parse<RateLimit>(canonical.dump());
  return s ? s->key : RateLimit::Key::client_ip;
}

bool needs_identity(const json& canonical) {
  const auto k = key_of(canonical);
  return k == RateLimit::Key::consumer || k == RateLimit::Key::claim;
}

IdentityNeed identity_need(std::string_view policy, const json& canonical) {
  auto s = parse<RateLimit>(canonical.dump());
  IdentityNeed need;
  need.claims = s && s->key == RateLimit::Key::claim;
  const std::string key = need.claims ? "claim:" + s->key_name : "consumer";
  need.message = "rate_limit " + text::quote(policy) + " counts by " + key + ", which needs " +
                 (need.claims ? "a jwt" : "an authentication") + " policy on the route";
  return need;
}

} // namespace

template <>
Result<RateLimit> parse<RateLimit>(std::string_view canonical, std::string_view policy) {
  return parse_with<RateLimit>(kName, &read, canonical, policy);
}

constexpr KindInfo kRateLimitKind{
    .name = kName,
    .phase = Phase::rate_limit,
    .authenticates = false,
    .composite = false,
    .schema = kSchema,
    .compile = &compile,
    .build = &build,
    .needs_identity = &needs_identity,
    .references = nullptr,
    .identity_need = &identity_need,
    .performs_io = true, // the redis store
};

} // namespace gw::policy
