// The request's phases before and after the upstream: routing, the route's filters (and the
// I/O they ask for), and the log.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gw/core/text.hpp"
#include "session.hpp"

namespace gw::proxy {

using namespace gw::wire;
using namespace std::chrono_literals;
using upstream::EndpointRuntime;

// ---- phase: route

std::optional<policy::LocalReply> Session::route_request(RequestContext& r) {
  RequestHead& h = r.head;
  router::Request rreq;
  rreq.host = h.host;
  rreq.method = h.method_id;
  rreq.path = h.path;
  rreq.query = h.query;
  struct FieldLookup final : router::HeaderLookup {
    const RequestMessage* msg = nullptr;
    bool find(std::string_view name, std::string_view& v) const override {
      auto it = msg->find(boost::core::string_view(name.data(), name.size()));
      if (it == msg->end()) return false;
      v = sv(it->value());
      return true;
    }
  } lookup;
  lookup.msg = &r.msg();
  rreq.headers = &lookup;
  if (h.target != "*") r.match = r.snap->routes().match(rreq);

  if (auto local = answer_locally(h, r.match)) return local;
  // A CORS preflight is routed as the request it announces when the OPTIONS itself has no
  // route that answers preflights; that route's CORS filter answers it.
  const auto& policies = r.snap->policies();
  const auto answers = [&](const router::Match& m) {
    return m.matched() && policies.route(m.route).facts().answers_preflight;
  };
  if (h.method_id == model::Method::OPTIONS && !answers(r.match)) {
    const auto& msg = r.msg();
    if (msg.find(http::field::origin) != msg.end())
      if (auto acrm = msg.find(http::field::access_control_request_method); acrm != msg.end())
        if (const auto asked = model::parse_method(sv(acrm->value()))) {
          rreq.method = *asked;
          if (auto m = r.snap->routes().match(rreq); answers(m)) r.match = m;
        }
  }
  if (!r.match.matched()) {
    policy::LocalReply lr;
    if (r.match.status == router::MatchStatus::method_not_allowed) {
      lr.kind = ErrorKind::method_not_allowed;
      lr.message = "method " + std::string(h.method) + " is not allowed here";
      lr.headers.emplace_back("allow", r.match.allow.to_string());
    } else {
      lr.kind = ErrorKind::no_route;
      lr.message = "no route for " + std::string(h.method) + " " + std::string(h.path);
    }
    return lr;
  }
  r.route = &r.snap->config().routes[r.match.route];
  r.chain = &policies.route(r.match.route);
  if (r.route->max_body && h.body == BodyKind::length && h.content_length > r.route->max_body) {
    policy::LocalReply lr;
    lr.kind = ErrorKind::body_too_large;
    lr.message = "the request body is larger than " + std::to_string(r.route->max_body) + " bytes";
    return lr;
  }
  if (h.expect_other) {
    policy::LocalReply lr;
    lr.kind = ErrorKind::expectation_failed;
    lr.message = "only 100-continue is understood";
    return lr;
  }
  return std::nullopt;
}

// ---- phase: request filters

net::awaitable<bool> Session::request_filters(RequestContext& r) {
  policy::FilterContext& ctx = r.filters;
  r.chain->begin(ctx); // the route's facts, and the fixed parts of the edits
  ctx.route = r.route->name;
  ctx.counters = &w_.filter_counters;
  if (r.chain->empty()) co_return true;
  ctx.request = &r.view.emplace(r.msg(), r.head);
  ctx.now_s = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  r.filters_ran = true;
  const auto filters = r.chain->filters();
  for (std::size_t i = 0; i < filters.size(); ++i) {
    ctx.position = i;
    policy::Verdict v = filters[i]->on_request(ctx);
    while (v.type() == policy::Verdict::Type::call) {
      policy::IoResult res = co_await perform(v.call());
      ctx.position = i;
      v = filters[i]->resume(ctx, std::move(res));
    }
    if (v.type() == policy::Verdict::Type::reply) {
      policy::LocalReply& lr = v.reply();
      // What earlier filters add to every response (CORS, RateLimit) goes on refusals too: a
      // browser reads a 401 only with its CORS fields.
      lr.headers.insert(lr.headers.end(), ctx.edits.response_add.begin(),
                        ctx.edits.response_add.end());
      if (!lr.detail.empty()) r.out.error_detail = lr.detail;
      co_await refuse(r, std::move(lr));
      co_return false;
    }
  }
  co_return true;
}

redis::Client& Session::redis_for(const policy::RedisTake& t) {
  auto& c = w_.redis[t.server];
  if (!c) c = std::make_unique<redis::Client>(w_.ioc.get_executor(), t.host, t.port, t.timeout);
  return *c;
}

net::awaitable<policy::IoResult> Session::perform(policy::IoCall& call) {
  if (auto* t = std::get_if<policy::RedisTake>(&call)) {
    redis::Client& client = redis_for(*t);
    auto res = co_await client.take(t->key, t->interval_us, t->burst);
    policy::RedisReply out;
    if (!res) {
      out.error = res.error().message;
      co_return out;
    }
    out.ok = true;
    out.allowed = res->allowed;
    out.remaining = res->remaining;
    out.retry_after_ms = res->retry_after_ms;
    out.reset_ms = res->reset_ms;
    co_return out;
  }
  if (!w_.http) {
    // As many idle connections per service as per upstream endpoint: a pool smaller than the
    // concurrency opens (and closes) a connection for most calls under load.
    upstream::HttpClientOptions o;
    o.max_idle_per_host = w_.limits.max_idle_per_endpoint;
    w_.http = std::make_unique<upstream::HttpClient>(w_.ioc.get_executor(), o);
  }
  // The call is a member of the verdict, which outlives this co_await, as the client requires.
  co_return co_await w_.http->call(std::get<policy::HttpCall>(call));
}

// ---- phase: log

void Session::log_request(RequestContext& r) {
  // Nothing arrived but the end of the connection (or blank lines): no request to log.
  if (r.out.status == 0 && !r.parser) return;
  policy::FilterContext& ctx = r.filters;
  if (r.filters_ran) {
    ctx.status = r.out.status;
    const auto filters = r.chain->filters();
    for (std::size_t i = 0; i < filters.size(); ++i) {
      ctx.position = i;
      filters[i]->on_log(ctx);
    }
  }
  for (const auto& [line, limited] : ctx.notes) {
    // A dead store or service must not flood gwd's log: limited lines once a second per worker
    // and subject.
    if (limited) {
      const auto now = Clock::now();
      auto& last = w_.last_note_log[line.substr(0, line.find(':'))];
      if (last != Clock::time_point{} && now - last < 1s) continue;
      last = now;
    }
    std::fprintf(stderr, "gwd: %s (request_id %.*s)\n", line.c_str(),
                 static_cast<int>(r.head.request_id.size()), r.head.request_id.data());
  }
  ctx.notes.clear();
  const auto elapsed = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - r.start).count());
  observe::Counters& c = r.route ? *r.ws->route_stats[r.match.route] : w_.unrouted;
  ++c.requests;
  c.record_status(r.out.status);
  c.bytes_in += r.out.bytes_in;
  c.bytes_out += r.out.bytes_out;
  c.latency.add(elapsed);
  if (!r.out.error.empty()) ++c.local_replies;
  if (r.route && r.out.upstream_status) {
    observe::Counters& u = *r.ws->upstreams[r.route->upstream]->stats;
    ++u.requests;
    u.record_status(r.out.upstream_status);
    u.latency.add(static_cast<std::uint64_t>(r.out.upstream_us));
  }
  if (!w_.log.enabled()) return;
  observe::AccessRecord rec;
  rec.time_us = r.start_us;
  rec.worker = w_.id;
  rec.generation = r.snap->generation();
  rec.request_id = r.head.request_id;
  rec.client = r.head.client.empty() ? std::string_view(peer_ip_) : r.head.client;
  rec.method = r.head.method;
  rec.host = r.head.host;
  rec.path = r.head.path.empty() ? r.head.target : r.head.path;
  rec.query = r.head.query;
  if (r.route) {
    rec.route = r.route->name;
    rec.consumer = ctx.identity.consumer;
    rec.secret_params = r.chain->facts().secret_params;
    rec.upstream = r.snap->config().upstreams[r.route->upstream].name;
  }
  rec.endpoint = r.out.endpoint;
  rec.error = r.out.error;
  rec.error_detail = r.out.error_detail;
  rec.status = r.out.status;
  rec.upstream_status = r.out.upstream_status;
  rec.attempts = r.out.attempts;
  rec.bytes_in = r.out.bytes_in;
  rec.bytes_out = r.out.bytes_out;
  rec.duration_us = elapsed;
  rec.upstream_us = static_cast<std::uint64_t>(r.out.upstream_us);
  w_.log.add(rec);
}

void Session::report_upstream_failure(const RequestContext& r, const ProxyError& e) {
  // One line per second per worker at most: a dead upstream must not flood gwd's log. Every
  // failure is in the access log, with the same detail.
  const auto now = Clock::now();
  if (now - w_.last_upstream_error_log < 1s) return;
  w_.last_upstream_error_log = now;
  const char* up = r.route ? r.snap->config().upstreams[r.route->upstream].name.c_str() : "-";
  std::fprintf(stderr, "gwd: upstream \"%s\": %s (%s, request_id %.*s)\n", up, e.detail.c_str(),
               std::string(name_of(e.kind)).c_str(), static_cast<int>(r.head.request_id.size()),
               r.head.request_id.data());
}

} // namespace gw::proxy
