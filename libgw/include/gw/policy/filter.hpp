// The filter API: what a policy kind implements to run on the request path.
//
// A route's policies are filters, called by the proxy in fixed, named phases:
//   on_request        in the route's order (phase order, then as listed): may answer now
//   (select upstream, upstream request: the proxy, applying what filters put in `Edits`)
//   on_response       in reverse order, with the response head: may change its fields
//   on_response_body  in reverse order, for filters that asked for the body (stream or whole)
//   on_log            always, once per request that reached its route's filters
// A hook never blocks: one that needs I/O (Redis, an HTTP call) returns `Verdict::await(call)`,
// the proxy performs the call without blocking its worker and hands the result to `resume`,
// which answers like a hook (and may ask for another call). So filters stay pure, unit-tested
// without sockets, and every kind of I/O has one path through the proxy.
//
// Filter instances are immutable, built once per table generation by their kind's factory
// (kinds.hpp) and shared by every worker. Per-request state lives in `FilterContext`; a filter
// that needs more keeps it in its slot (`FilterContext::slot`).
// Read next: kinds.hpp (the table of kinds), route_chain.hpp (a route's filters in order).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/units.hpp"
#include "gw/wire/local_reply.hpp"

namespace gw::policy {

/// Header fields as name/value pairs (names lowercase), never pre-rendered text.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// An answer the gateway gives instead of forwarding (or instead of the upstream's answer).
struct LocalReply {
  wire::ErrorKind kind = wire::ErrorKind::internal;
  unsigned status = 0;             // 0: wire::status_of(kind)
  std::string message;             // the JSON error body's "message" (when `body` is not set)
  HeaderList headers;              // added to the reply (WWW-Authenticate, Retry-After, CORS, ...)
  std::optional<std::string> body; // a body of the filter's own (Lua's exit, ext_auth's denial)
  std::string content_type;        // for `body` ("" = none sent)
  std::string detail;              // for the access log only (may name internal addresses)
  unsigned effective_status() const noexcept { return status ? status : wire::status_of(kind); }
};

/// The client's request as filters see it; the proxy implements it over its parsed head.
class RequestView {
public:
  virtual ~RequestView() = default;
  virtual std::string_view method() const noexcept = 0;
  /// The first value of a header (`name` lowercase), or nullopt.
  virtual std::optional<std::string_view> header(std::string_view name) const noexcept = 0;
  /// Every field in order, as received (for filters that forward a chosen set).
  virtual void for_each_header(
      const std::function<void(std::string_view name, std::string_view value)>& fn) const = 0;
  virtual std::string_view path() const noexcept = 0;  // canonical, without the query
  virtual std::string_view query() const noexcept = 0; // without '?'
  virtual std::string_view host() const noexcept = 0;
  virtual std::string_view client_ip() const noexcept = 0;
  virtual std::string_view request_id() const noexcept = 0;
};

/// The upstream's response head as response filters see it.
class ResponseView {
public:
  virtual ~ResponseView() = default;
  virtual unsigned status() const noexcept = 0;
  virtual std::optional<std::string_view> header(std::string_view name) const noexcept = 0;
};

/// Who the caller is, once authenticated.
struct Identity {
  bool authenticated = false;
  std::string consumer;
  nlohmann::json claims; // a JWT's claims; null otherwise
  std::vector<std::string> scopes;
  void clear() {
    authenticated = false;
    consumer.clear();
    claims = nullptr;
    scopes.clear();
  }
};

/// Scopes granted by JWT claims: "scope" (space-separated) or "scp" (array or string).
std::vector<std::string> scopes_of(const nlohmann::json& claims);

/// A headers policy's operations on one header block (names lowercase).
struct HeaderOps {
  std::vector<std::pair<std::string, std::string>> set, add, rename;
  std::vector<std::string> remove;
  bool empty() const noexcept {
    return set.empty() && add.empty() && rename.empty() && remove.empty();
  }
};

/// A route's headers policies composed in the route's order, once per table generation: a later
/// policy's remove or set replaces what an earlier one set or added.
struct Transform {
  HeaderOps request, response;
  HeaderOps query; // set and remove only; parameter names match exactly
  bool empty() const noexcept { return request.empty() && response.empty() && query.empty(); }
};

/// Header names as the proxy meets them (any case) against `ops` (lowercase).
bool replaces(const HeaderOps& ops, std::string_view name) noexcept; // removed or set
const std::string* renamed(const HeaderOps& ops, std::string_view name) noexcept;

/// What a route's filters are known to do, gathered once per table generation when its chain is
/// built (Filter::contribute), so that the proxy and other filters need not ask each one.
struct RouteFacts {
  std::vector<std::string> protect;       // headers only the gateway may send (consumer, claims)
  std::vector<std::string> secret_params; // query parameters carrying credentials (not logged)
  std::vector<std::string> challenges;    // WWW-Authenticate values of its authenticators
  Transform transform;                    // every headers policy, composed in order
  bool answers_preflight = false;         // a CORS filter answers OPTIONS preflights
};

/// How the forwarded request and its response change. Reset per request (clear()).
struct Edits {
  // The upstream request, per request:
  std::vector<std::string> drop;         // client headers not forwarded (lowercase)
  HeaderList set;                        // headers the gateway sets (replacing)
  std::vector<std::string> drop_query;   // query parameters (exact decoded names)
  std::vector<std::string> drop_cookies; // cookies (exact names)
  std::optional<std::string> path;       // replaces the upstream path (rewrite's)
  // The response to the client:
  HeaderList response_add; // added to the response and to local replies (CORS, RateLimit)
  HeaderList response_set; // replace the upstream's field of that name
  std::vector<std::string> response_remove;
  // Fixed per route and generation (from RouteFacts):
  const std::vector<std::string>* protect = nullptr;
  const Transform* transform = nullptr; // applied after the above

  void clear();
  /// The client's request header is not forwarded as sent (credential, protected, replaced).
  bool drops(std::string_view name) const noexcept;
  /// The client's query parameter (decoded name) is not forwarded.
  bool drops_param(std::string_view name) const noexcept;
  bool query_changes() const noexcept {
    return !drop_query.empty() || (transform && !transform->query.empty());
  }
  /// Sets a request header the gateway owns, unless an earlier filter already set it.
  void set_once(const std::string& name, std::string value);
  /// Sets (replaces) a request header.
  void set_header(std::string name, std::string value);
};

// ---- I/O a filter asks the proxy for

/// One GCRA take on a Redis server (policy::Take's fields come back in RedisReply).
struct RedisTake {
  std::string server; // "HOST:PORT/TIMEOUT_MS": names the worker's connection for it
  std::string host;
  std::uint16_t port = 6379;
  units::Millis timeout{100};
  std::string key;
  std::int64_t interval_us = 0, burst = 0;
};
struct RedisReply {
  bool ok = false;
  std::string error; // when !ok: "redis HOST:PORT: ..."
  bool allowed = false;
  std::int64_t remaining = 0, retry_after_ms = 0, reset_ms = 0;
};

/// An HTTP/1.1 request to a service (external auth, later fan-out), over pooled connections.
struct HttpCall {
  std::string host; // an IP literal: no DNS lookup on the request path
  std::uint16_t port = 80;
  std::string authority; // the Host header
  std::string method = "GET";
  std::string target = "/"; // path and query
  HeaderList headers;
  std::string body;
  units::Millis timeout{1000};
  std::size_t max_body = 64 * 1024; // a longer answer is an error
};
struct HttpReply {
  bool ok = false;        // a complete response arrived
  bool timed_out = false; // when !ok
  std::string error;      // when !ok
  unsigned status = 0;
  HeaderList headers;
  std::string body;
};

using IoCall = std::variant<RedisTake, HttpCall>;
using IoResult = std::variant<RedisReply, HttpReply>;

/// What a hook answers.
class Verdict {
public:
  enum class Type : std::uint8_t { proceed, reply, call };
  static Verdict proceed() { return Verdict(); }
  static Verdict respond(LocalReply r) {
    Verdict v;
    v.type_ = Type::reply;
    v.reply_ = std::move(r);
    return v;
  }
  static Verdict await(IoCall c) {
    Verdict v;
    v.type_ = Type::call;
    v.call_ = std::move(c);
    return v;
  }
  Type type() const noexcept { return type_; }
  LocalReply& reply() noexcept { return reply_; }
  IoCall& call() noexcept { return call_; }

private:
  Type type_ = Type::proceed;
  LocalReply reply_;
  IoCall call_;
};

/// Whether a response filter sees the body, and how.
enum class BodyMode : std::uint8_t {
  none,   // the body streams past untouched
  stream, // on_response_body per chunk as it arrives (the response goes out chunked)
  whole,  // once, with the whole body (bounded by the route's max_body; 502 past it)
};

/// Counters a filter may bump; one per worker, summed by the control plane.
struct FilterCounters {
  std::uint64_t rate_limit_store_errors = 0;
  std::uint64_t ext_auth_errors = 0;
  std::uint64_t lua_errors = 0;
};

/// A filter's own per-request state (see FilterContext::slot).
struct Slot {
  virtual ~Slot() = default;
};

/// Per-request state filters read and write. Worker-local; lives for one request.
struct FilterContext {
  const RequestView* request = nullptr;
  const ResponseView* response = nullptr; // set for on_response and later
  std::string_view route;                 // the route's name
  std::int64_t now_s = 0;                 // wall clock, seconds (token expiry)
  Identity identity;
  Edits edits;
  const RouteFacts* facts = nullptr;
  FilterCounters* counters = nullptr;
  unsigned status = 0; // the status the client gets (set before on_log)
  /// Lines for gwd's log, written with the request id once the request ends. `limited` lines
  /// (a dead store, say) are written at most once a second per worker.
  std::vector<std::pair<std::string, bool>> notes;
  /// One slot per filter of the route (by its position): null until the filter sets it.
  std::vector<std::unique_ptr<Slot>> slots;

  void note(std::string line, bool limited = false) {
    notes.emplace_back(std::move(line), limited);
  }
  /// The slot of the filter at `position` (FilterContext::position while a hook runs).
  std::unique_ptr<Slot>& slot() {
    if (slots.size() <= position) slots.resize(position + 1);
    return slots[position];
  }
  std::size_t position = 0; // set by the proxy before each hook
  void reset() {
    identity.clear();
    edits.clear();
    response = nullptr;
    status = 0;
    notes.clear();
    slots.clear();
    position = 0;
  }
};

/// A policy kind's runtime half. Immutable; any thread.
class Filter {
public:
  virtual ~Filter() = default;
  /// Adds what this filter is known to do on every request of a route (build time).
  virtual void contribute(RouteFacts&) const {}
  virtual Verdict on_request(FilterContext&) const { return Verdict::proceed(); }
  /// The result of the call a hook asked for; answers like the hook.
  virtual Verdict resume(FilterContext&, IoResult&&) const { return Verdict::proceed(); }
  /// The response head is in `ctx.response`; changes go to `ctx.edits.response_*`. A reply
  /// replaces the upstream's response (its body is discarded).
  virtual Verdict on_response(FilterContext&) const { return Verdict::proceed(); }
  virtual BodyMode response_body() const noexcept { return BodyMode::none; }
  /// A piece of the response body (`last`: the end). The filter may change `data` in place; in
  /// whole mode it is the whole body. A reply in whole mode replaces the response. In stream mode
  /// the head has gone: a reply there means the filter failed, and the proxy ends the response
  /// by closing the connection (the reply is not sent; its detail goes to the access log).
  virtual Verdict on_response_body(FilterContext&, std::string& /*data*/, bool /*last*/) const {
    return Verdict::proceed();
  }
  virtual void on_log(FilterContext&) const {}
};

} // namespace gw::policy
