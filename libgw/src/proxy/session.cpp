// The downstream session: the connection loop, and the phases each request goes through.
//
//   handle_one           the driver: one request, phase by phase; the log phase runs from a
//                        scope guard, whatever way the request ends
//   read_request         the head: read, checked (heads.hpp), parsed; 400/408/431 otherwise
//   route_request        match, CORS preflight routing, what the gateway answers itself
//   request_filters      the route's filters, in order (policy/filter.hpp); their I/O
//   forward              on_upstream_request (the head), then per attempt: select_upstream,
//                        connect (or a pooled connection), send, read the response head
//   respond              response filters (reverse order), the head, the body, the pool
//   log_request          counters, the access log, filters' on_log, their notes
//
// Bodies stream through `pump`, the one relay used in both directions: a BodyReader takes the
// body out of what a peer sent, a BodyWriter frames it for the other side (body.hpp). Header
// blocks are checked before Beast's parser sees them (bare CR/LF, obs-fold, NUL), then framing
// again (heads.hpp), so that no request can be read two ways.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <optional>

#include "body.hpp"
#include "gw/core/text.hpp"
#include "gw/policy/route_chain.hpp"
#include "gw/redis/client.hpp"
#include "gw/router/route_table.hpp"
#include "gw/wire/local_reply.hpp"
#include "heads.hpp"
#include "worker_context.hpp"

namespace gw::proxy {

using namespace gw::wire;
namespace beast = boost::beast;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);
using error_code = boost::system::error_code;
using upstream::EndpointRuntime;
using upstream::PooledConnection;

namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The outcome of reading a head from a peer.
enum class HeadStatus : std::uint8_t {
  ok,
  eof_before_any,
  timeout,
  too_large,
  malformed,
  io_error
};

/// Reads one header block into `buf`: returns its length in `len`. Leading empty lines (which
/// some clients send after a body) are skipped, as RFC 9112 §2.2 allows. The caller has armed
/// the session's deadline; `h` tells a cancellation by the watchdog from other errors.
net::awaitable<HeadStatus> read_head(tcp::socket& s, beast::flat_buffer& buf, std::size_t limit,
                                     std::size_t& len, const SessionHandle& h) {
  std::size_t scanned = 0;
  for (;;) {
    auto data = std::string_view(static_cast<const char*>(buf.data().data()), buf.size());
    std::size_t skip = 0;
    while (skip + 1 < data.size() && data[skip] == '\r' && data[skip + 1] == '\n')
      skip += 2;
    if (skip) {
      buf.consume(skip);
      data.remove_prefix(skip);
      scanned = 0;
    }
    if (const std::size_t end = find_header_end(data, scanned)) {
      if (end > limit) co_return HeadStatus::too_large;
      len = end;
      co_return HeadStatus::ok;
    }
    if (data.size() > limit) co_return HeadStatus::too_large;
    // A bare LF line ending would never complete the block; refuse it as soon as it shows.
    if (data.find('\n') != std::string_view::npos &&
        check_header_block(data.substr(0, data.rfind('\n') + 1)) != BlockError::none)
      co_return HeadStatus::malformed;
    scanned = data.size();
    auto [ec, n] =
        co_await s.async_read_some(buf.prepare(std::max<std::size_t>(4096, limit / 4)), kTuple);
    if (ec) {
      if (h.timed_out) co_return HeadStatus::timeout;
      if (buf.size() == 0 && (ec == net::error::eof || ec == net::error::connection_reset))
        co_return HeadStatus::eof_before_any;
      co_return HeadStatus::io_error;
    }
    buf.commit(n);
  }
}

/// Why a header block is refused, in words.
const char* block_problem(BlockError e) {
  switch (e) {
  case BlockError::obs_fold:
    return "obsolete line folding in a header field";
  case BlockError::bare_cr:
    return "a bare CR in the request head";
  case BlockError::bare_lf:
    return "a bare LF in the request head";
  case BlockError::nul:
    return "a NUL byte in the request head";
  case BlockError::none:
    break;
  }
  return "";
}

/// What filters see of a request: its parsed head.
class HeadView final : public policy::RequestView {
public:
  HeadView(const RequestMessage& msg, const RequestHead& head) : msg_(msg), head_(head) {}
  std::string_view method() const noexcept override { return head_.method; }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    auto it = msg_.find(boost::core::string_view(name.data(), name.size()));
    if (it == msg_.end()) return std::nullopt;
    return sv(it->value());
  }
  void for_each_header(const std::function<void(std::string_view, std::string_view)>& fn)
      const override {
    for (const auto& f : msg_)
      fn(sv(f.name_string()), sv(f.value()));
  }
  std::string_view path() const noexcept override { return head_.path; }
  std::string_view query() const noexcept override { return head_.query; }
  std::string_view host() const noexcept override { return head_.host; }
  std::string_view client_ip() const noexcept override { return head_.client; }
  std::string_view request_id() const noexcept override { return head_.request_id; }

private:
  const RequestMessage& msg_;
  const RequestHead& head_;
};

/// What response filters see of the upstream's response head.
class ResponseHeadView final : public policy::ResponseView {
public:
  explicit ResponseHeadView(const ResponseMessage& msg) : msg_(msg) {}
  unsigned status() const noexcept override { return msg_.result_int(); }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    auto it = msg_.find(boost::core::string_view(name.data(), name.size()));
    if (it == msg_.end()) return std::nullopt;
    return sv(it->value());
  }

private:
  const ResponseMessage& msg_;
};

/// An error on the way (Pingora's error shape): what kind, which side caused it, whether a
/// retry may help, and the detail for the log (it may name internal addresses).
struct ProxyError {
  enum class Source : std::uint8_t { client, upstream, gateway };
  ErrorKind kind;
  Source source;
  bool retryable = false;
  std::string detail;
};

ProxyError upstream_error(ErrorKind k, std::string detail, bool retryable = false) {
  return {k, ProxyError::Source::upstream, retryable, std::move(detail)};
}
ProxyError client_error(ErrorKind k, std::string detail) {
  return {k, ProxyError::Source::client, false, std::move(detail)};
}

/// What happened to a request, for counters and the access log.
struct Outcome {
  unsigned status = 0, upstream_status = 0, attempts = 0;
  std::string_view endpoint, error;
  std::string error_detail;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::int64_t upstream_us = 0;
  bool response_started = false;
};

/// One request: the pinned generation, its head, its route and filters, and its outcome.
/// Phases read and write it; nothing per request lives in the session object besides reused
/// buffers.
struct RequestContext {
  Clock::time_point start = Clock::now();
  std::int64_t start_us = now_us();
  std::shared_ptr<WorkerSnapshot> ws; // pinned generation: table, upstream state, stats slots
  const runtime::Snapshot* snap = nullptr;
  std::optional<http::request_parser<http::buffer_body>> parser;
  RequestHead head;
  std::array<char, 32> id_buf{};
  router::Match match;
  const model::Route* route = nullptr;
  const policy::RouteChain* chain = nullptr;
  policy::FilterContext& filters; // the session's, reset per request
  std::optional<HeadView> view;   // what filters see of the request
  bool filters_ran = false;       // their on_log is due
  bool close = false;             // the connection closes after this request
  Outcome out;

  RequestContext(std::shared_ptr<WorkerSnapshot> pinned, policy::FilterContext& f)
      : ws(std::move(pinned)), snap(ws->snap.get()), filters(f) {
    filters.reset();
    filters.request = nullptr;
  }
  RequestMessage& msg() { return parser->get(); }
};

/// Deadlines of a relay: each read and each write gets its own, capped by the whole's.
struct Deadlines {
  Clock::duration read_each, write_each;
  Clock::time_point read_cap = Clock::time_point::max(), write_cap = Clock::time_point::max();
  Clock::time_point read() const { return std::min(read_cap, Clock::now() + read_each); }
  Clock::time_point write() const { return std::min(write_cap, Clock::now() + write_each); }
};
constexpr Clock::duration kNoLimit = std::chrono::hours(24 * 365);

/// How a relay ended.
struct Pumped {
  enum class What : std::uint8_t {
    ok,
    read_failed,
    write_failed,
    malformed,
    too_large,
    early_end,
    filter_failed, // a stream-mode body filter answered (its detail is in the outcome)
  };
  What what = What::ok;
  error_code ec;
  bool timed_out = false;
  bool ok() const noexcept { return what == What::ok; }
};

class Session {
public:
  Session(WorkerContext& w, tcp::socket socket) : w_(w), down_(std::move(socket)) {
    error_code ec;
    const auto peer = down_.remote_endpoint(ec);
    if (!ec) {
      peer_ip_ = peer.address().to_string();
      auto ip = parse_ip(peer_ip_);
      if (ip)
        for (const auto& c : w_.trusted)
          if (c.contains(*ip)) peer_trusted_ = true;
    }
    down_.set_option(tcp::no_delay(true), ec);
    out_.reserve(2048);
    uphead_.reserve(2048);
    scratch_.resize(16 * 1024);
  }

  net::awaitable<void> run() {
    handle_ = w_.sessions.insert(w_.sessions.end(), SessionHandle{});
    handle_->down = &down_;
    while (!w_.draining) {
      handle_->idle = true;
      if (dbuf_.size() == 0) {
        arm(Clock::now() + w_.limits.idle_timeout);
        auto [ec, n] = co_await down_.async_read_some(dbuf_.prepare(8192), kTuple);
        if (ec) break; // idle timeout, close or reset between requests: nothing to answer
        dbuf_.commit(n);
      }
      handle_->idle = false;
      if (!co_await handle_one()) break;
    }
    w_.sessions.erase(handle_);
    error_code ec;
    down_.shutdown(tcp::socket::shutdown_send, ec);
    down_.close(ec);
  }

private:
  /// Runs the log phase when a request ends, however it ends. Not when the worker is being torn
  /// down with the request's coroutine still suspended: then there is no worker to log into.
  struct LogGuard {
    Session& s;
    RequestContext& r;
    ~LogGuard() {
      if (!s.w_.stopped) s.log_request(r);
    }
  };

  net::awaitable<bool> handle_one();
  // The phases, in order.
  net::awaitable<bool> read_request(RequestContext& r);
  net::awaitable<bool> route_request(RequestContext& r);
  net::awaitable<bool> request_filters(RequestContext& r);
  net::awaitable<std::optional<ProxyError>> forward(RequestContext& r);
  void log_request(RequestContext& r);

  // What the phases use.
  struct Exchange; // one upstream exchange: connection, endpoint, response parser
  net::awaitable<std::optional<ProxyError>> attempt(RequestContext& r, Exchange& x,
                                                    Clock::time_point try_deadline,
                                                    Clock::time_point route_deadline);
  net::awaitable<std::optional<ProxyError>> respond(RequestContext& r, Exchange& x);
  net::awaitable<policy::IoResult> perform(policy::IoCall& call);
  redis::Client& redis_for(const policy::RedisTake& t);
  /// Sends a local reply; the connection closes after it when `close` (or when it cannot stay).
  net::awaitable<void> reply(RequestContext& r, const policy::LocalReply& lr, bool close);
  net::awaitable<void> reply(RequestContext& r, ErrorKind kind, std::string message, bool close);
  /// A refusal after the head was read: a body we will not read must not stay in the stream.
  net::awaitable<void> refuse(RequestContext& r, policy::LocalReply lr) {
    co_await reply(r, lr, r.head.body != BodyKind::none);
  }
  template <bool isRequest>
  net::awaitable<Pumped> pump(BodyReader<isRequest>& rd, tcp::socket& from,
                              beast::flat_buffer& in, const Deadlines& dl, tcp::socket* to,
                              BodyWriter& wr, std::string_view prefix, std::uint64_t& written,
                              std::string* sink = nullptr, RequestContext* tap = nullptr);
  void report_upstream_failure(const RequestContext& r, const ProxyError& e);

  /// Sets the deadline of the next I/O operations (see SessionHandle).
  void arm(Clock::time_point deadline) {
    handle_->deadline = deadline;
    handle_->timed_out = false;
  }
  bool timed_out() const { return handle_->timed_out; }

  /// Writes all of `bufs` to `s` before `deadline`; a timeout is reported as timed_out.
  template <class Buffers>
  net::awaitable<error_code> write_all(tcp::socket& s, const Buffers& bufs,
                                       Clock::time_point deadline) {
    arm(deadline);
    auto [ec, n] = co_await net::async_write(s, bufs, kTuple);
    if (ec && timed_out()) ec = net::error::timed_out;
    co_return ec;
  }

  WorkerContext& w_;
  tcp::socket down_;
  beast::flat_buffer dbuf_{64 * 1024 + 8192};
  std::string peer_ip_;
  bool peer_trusted_ = false;
  std::string out_;            // head to the client, reused
  std::string uphead_;         // head to the upstream, reused
  HeadScratch heads_;          // query and forwarding buffers, reused
  std::vector<char> scratch_;  // decoded body pieces, reused
  std::string pathbuf_;        // canonical path when it differs from the target
  std::string tapbuf_;         // a body piece handed to response filters
  policy::FilterContext fctx_; // per request, reset each time
  std::list<SessionHandle>::iterator handle_;
};

// ---- the driver

net::awaitable<bool> Session::handle_one() {
  RequestContext r(w_.current, fctx_); // pinned: a reload during this request does not change it
  LogGuard log{*this, r};
  if (co_await read_request(r) && co_await route_request(r) && co_await request_filters(r)) {
    auto e = co_await forward(r);
    handle_->up = nullptr; // the exchange's connection is gone or pooled
    if (e) {
      r.out.error_detail = std::move(e->detail);
      if (upstream_failure(e->kind)) report_upstream_failure(r, *e);
      if (r.out.response_started) {
        r.out.error = name_of(e->kind);
        r.close = true; // the head is out; only closing can signal the failure
      } else {
        std::string msg(client_message(e->kind, r.out.error_detail));
        co_await reply(r, e->kind, std::move(msg), true);
      }
    }
  }
  co_return r.head.keep_alive && !r.close && !w_.draining;
}

// ---- phase: read the request head

net::awaitable<bool> Session::read_request(RequestContext& r) {
  const Limits& lim = w_.limits;
  r.head.keep_alive = false; // until the head says otherwise
  std::size_t head_len = 0;
  arm(r.start + lim.header_timeout);
  const HeadStatus hs = co_await read_head(down_, dbuf_, lim.max_header_bytes, head_len, *handle_);
  // Messages are built before co_await: GCC 12 mishandles non-trivial temporaries inside a
  // co_await expression (they can be destroyed twice).
  std::string msg;
  switch (hs) {
  case HeadStatus::ok:
    break;
  case HeadStatus::eof_before_any:
  case HeadStatus::io_error:
    r.close = true;
    co_return false;
  case HeadStatus::timeout:
    co_await reply(r, ErrorKind::request_timeout, "the request head did not arrive in time", true);
    co_return false;
  case HeadStatus::too_large:
    msg = "the request head is larger than " + std::to_string(lim.max_header_bytes) + " bytes";
    co_await reply(r, ErrorKind::header_too_large, std::move(msg), true);
    co_return false;
  case HeadStatus::malformed:
    co_await reply(r, ErrorKind::bad_request, "malformed line endings in the request head", true);
    co_return false;
  }
  const std::string_view block(static_cast<const char*>(dbuf_.data().data()), head_len);
  std::optional<HeadRefusal> bad;
  if (const BlockError be = check_header_block(block); be != BlockError::none)
    bad = HeadRefusal{ErrorKind::bad_request, block_problem(be)};
  if (!bad) {
    r.parser.emplace();
    auto& p = *r.parser;
    p.header_limit(static_cast<std::uint32_t>(lim.max_header_bytes + 1));
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    error_code ec;
    p.put(net::buffer(block.data(), block.size()), ec);
    if (ec == http::error::header_limit)
      bad = HeadRefusal{ErrorKind::header_too_large, "the request head is too large"};
    else if (ec || !p.is_header_done())
      bad = HeadRefusal{ErrorKind::bad_request, "malformed request: " + ec.message()};
  }
  if (!bad) {
    dbuf_.consume(head_len);
    r.out.bytes_in += head_len;
    const HeadRules rules{lim.max_uri_bytes, peer_ip_, peer_trusted_, &w_.trusted};
    auto checked = check_request_head(r.msg(), rules, r.head, pathbuf_);
    if (!checked) bad = std::move(checked.error());
  }
  if (r.head.request_id.empty()) {
    w_.ids.next(r.id_buf);
    r.head.request_id = std::string_view(r.id_buf.data(), r.id_buf.size());
  }
  if (r.head.client.empty()) r.head.client = peer_ip_;
  if (!bad) co_return true;
  dbuf_.consume(dbuf_.size()); // the rest of the stream cannot be trusted
  co_await reply(r, bad->kind, std::move(bad->message), true);
  co_return false;
}

// ---- phase: route

net::awaitable<bool> Session::route_request(RequestContext& r) {
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

  if (auto local = answer_locally(h, r.match)) {
    co_await refuse(r, std::move(*local));
    co_return false;
  }
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
    co_await refuse(r, std::move(lr));
    co_return false;
  }
  r.route = &r.snap->config().routes[r.match.route];
  r.chain = &policies.route(r.match.route);
  if (r.route->max_body && h.body == BodyKind::length && h.content_length > r.route->max_body) {
    policy::LocalReply lr;
    lr.kind = ErrorKind::body_too_large;
    lr.message = "the request body is larger than " + std::to_string(r.route->max_body) + " bytes";
    co_await refuse(r, std::move(lr));
    co_return false;
  }
  if (h.expect_other) {
    policy::LocalReply lr;
    lr.kind = ErrorKind::expectation_failed;
    lr.message = "only 100-continue is understood";
    co_await refuse(r, std::move(lr));
    co_return false;
  }
  co_return true;
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
  if (!w_.http) w_.http = std::make_unique<upstream::HttpClient>(w_.ioc.get_executor());
  // The call is a member of the verdict, which outlives this co_await, as the client requires.
  co_return co_await w_.http->call(std::get<policy::HttpCall>(call));
}

// ---- phase: forward (upstream request, select upstream, exchange)

struct Session::Exchange {
  std::unique_ptr<PooledConnection> conn;
  std::shared_ptr<EndpointRuntime> ep; // held across awaits: a reload may drop it from the table
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool reused = false;
  bool body_sent = false;
};

net::awaitable<std::optional<ProxyError>> Session::forward(RequestContext& r) {
  const model::Route& route = *r.route;
  const model::Upstream& up = r.snap->config().upstreams[route.upstream];
  upstream::UpstreamRuntime& ur = *r.ws->upstreams[route.upstream]; // held by the pinned generation

  // on_upstream_request: the head, built once for every attempt.
  uphead_.clear();
  build_upstream_head(UpstreamRequest{r.head, r.msg(), route, r.match, r.filters.edits, peer_ip_,
                                      peer_trusted_},
                      heads_, uphead_);

  // select_upstream's key for hash balancing.
  std::uint64_t hash = 0;
  if (up.balance == model::Balance::hash) {
    std::string_view key;
    const auto& msg = r.msg();
    if (up.hash_on == model::HashOn::client_ip) {
      key = r.head.client;
    } else if (up.hash_on == model::HashOn::header) {
      auto it = msg.find(boost::core::string_view(up.hash_key.data(), up.hash_key.size()));
      if (it != msg.end()) key = sv(it->value());
    } else if (up.hash_on == model::HashOn::cookie) {
      auto it = msg.find(http::field::cookie);
      if (it != msg.end())
        if (auto v = text::cookie_value(sv(it->value()), up.hash_key)) key = *v;
    }
    hash = upstream::hash_key(key);
  }

  // Attempts: retry only where it is safe (see README): a connect failure (nothing was sent),
  // or a reused pooled connection that fails before any response byte, for idempotent requests
  // without a body (a streamed body cannot be sent twice).
  const auto route_deadline = r.start + std::chrono::milliseconds(route.timeout_ms);
  const std::uint32_t max_attempts = 1 + route.retries;
  upstream::Excluded tried;
  Exchange x;
  std::optional<ProxyError> last;
  const auto upstream_start = Clock::now();
  for (std::uint32_t n = 0; n < max_attempts; ++n) {
    if (Clock::now() >= route_deadline) {
      last = upstream_error(ErrorKind::upstream_timeout, "the route timeout expired");
      break;
    }
    auto picked = ur.balancer->pick(ur.loads, hash, tried);
    if (!picked)
      co_return upstream_error(ErrorKind::no_healthy_upstream,
                               "no usable endpoint in upstream \"" + up.name + "\"");
    tried.add(*picked);
    x.ep = ur.endpoints[*picked];
    ++x.ep->requests;
    if (n > 0) ++ur.stats->retries;
    r.out.endpoint = x.ep->address;
    ++r.out.attempts;
    const auto try_deadline =
        route.per_try_timeout_ms
            ? std::min(route_deadline,
                       Clock::now() + std::chrono::milliseconds(route.per_try_timeout_ms))
            : route_deadline;
    last = co_await attempt(r, x, try_deadline, route_deadline);
    if (!last) break;
    if (last->source == ProxyError::Source::client) co_return last;
    ++x.ep->failures;
    if (last->kind == ErrorKind::upstream_timeout)
      ++ur.stats->timeouts;
    else if (last->kind == ErrorKind::upstream_connect_failed)
      ++ur.stats->connect_failures;
    else
      ++ur.stats->protocol_errors;
    if (!last->retryable) break;
    if (last->kind == ErrorKind::upstream_timeout && Clock::now() >= route_deadline) break;
  }
  if (last) {
    handle_->up = nullptr;
    co_return last;
  }
  r.out.upstream_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - upstream_start).count();
  co_return co_await respond(r, x);
}

/// One attempt: a connection, the request, the response head. Errors say whether another
/// attempt is safe.
net::awaitable<std::optional<ProxyError>> Session::attempt(RequestContext& r, Exchange& x,
                                                           Clock::time_point try_deadline,
                                                           Clock::time_point route_deadline) {
  const Limits& lim = w_.limits;
  EndpointRuntime& ep = *x.ep;
  const model::Upstream& up = r.snap->config().upstreams[r.route->upstream];
  x.conn = upstream::checkout(ep, Clock::now());
  x.reused = x.conn != nullptr;
  if (!x.conn) {
    x.conn = std::make_unique<PooledConnection>(w_.ioc);
    handle_->up = &x.conn->socket;
    arm(std::min(try_deadline, Clock::now() + std::chrono::milliseconds(up.connect_timeout_ms)));
    auto [ec] = co_await x.conn->socket.async_connect(ep.addr, kTuple);
    if (ec) {
      const bool t = timed_out();
      x.conn.reset();
      // Nothing was sent: safe to retry for any method.
      co_return upstream_error(t ? ErrorKind::upstream_timeout : ErrorKind::upstream_connect_failed,
                               "connecting to " + ep.address + ": " +
                                   (t ? std::string("timed out") : ec.message()),
                               true);
    }
    error_code ignored;
    x.conn->socket.set_option(tcp::no_delay(true), ignored);
  }
  handle_->up = &x.conn->socket;
  ++ep.load.active;
  struct ActiveGuard {
    std::shared_ptr<EndpointRuntime> e;
    ~ActiveGuard() { --e->load.active; }
  } guard{x.ep};

  // 100-continue: we answer it ourselves once we are ready to take the body.
  if (r.head.expect_continue && !x.body_sent) {
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    if (co_await write_all(down_, net::buffer(k100.data(), k100.size()),
                           Clock::now() + lim.idle_timeout))
      co_return client_error(ErrorKind::bad_request, "client went away");
    r.head.expect_continue = false;
  }

  // Send the head and the body (one relay; the head goes out with the first piece).
  const bool can_retry_send = r.head.body == BodyKind::none;
  const bool safe_again = x.reused && can_retry_send && r.head.idempotent();
  x.body_sent = x.body_sent || r.head.body != BodyKind::none;
  {
    BodyReader<true> rd(r.head.body, r.head.content_length, *r.parser, scratch_,
                        r.route->max_body);
    BodyWriter wr(r.head.body == BodyKind::chunked);
    Deadlines dl{lim.idle_timeout, kNoLimit, route_deadline, try_deadline};
    std::uint64_t sent = 0;
    const Pumped p = co_await pump(rd, down_, dbuf_, dl, &x.conn->socket, wr, uphead_, sent);
    r.out.bytes_in += rd.consumed();
    if (!p.ok()) {
      x.conn.reset();
      switch (p.what) {
      case Pumped::What::write_failed:
        r.head.keep_alive = r.head.keep_alive && r.head.body == BodyKind::none;
        co_return upstream_error(p.ec == net::error::timed_out ? ErrorKind::upstream_timeout
                                                               : ErrorKind::upstream_protocol_error,
                                 "sending to " + ep.address + ": " + p.ec.message(), safe_again);
      case Pumped::What::too_large:
        r.head.keep_alive = false;
        co_return client_error(ErrorKind::body_too_large,
                               "the request body is larger than " +
                                   std::to_string(r.route->max_body) + " bytes");
      case Pumped::What::malformed:
        r.head.keep_alive = false;
        co_return client_error(ErrorKind::bad_request, "malformed chunked body: " + p.ec.message());
      default: // the client's read failed or ended early
        r.head.keep_alive = false;
        co_return client_error(p.timed_out ? ErrorKind::request_timeout : ErrorKind::bad_request,
                               "reading the request body: " +
                                   (p.ec ? p.ec.message() : std::string("End of file")));
      }
    }
  }

  // Read the response head; 1xx interim responses are relayed (HTTP/1.1 clients) and skipped.
  for (;;) {
    std::size_t len = 0;
    arm(try_deadline);
    const HeadStatus hs =
        co_await read_head(x.conn->socket, x.conn->buf, lim.max_header_bytes, len, *handle_);
    std::optional<ProxyError> e;
    if (hs == HeadStatus::timeout) {
      e = upstream_error(ErrorKind::upstream_timeout, ep.address + " did not answer in time");
    } else if (hs == HeadStatus::too_large) {
      e = upstream_error(ErrorKind::upstream_protocol_error,
                         ep.address + " sent a response head larger than " +
                             std::to_string(lim.max_header_bytes) + " bytes");
    } else if (hs != HeadStatus::ok) {
      // Only a reused connection that failed before any response byte may be retried.
      const bool nothing = x.conn->buf.size() == 0;
      e = upstream_error(ErrorKind::upstream_protocol_error,
                         ep.address + " closed the connection or sent garbage before a response",
                         safe_again && nothing);
    }
    if (e) {
      x.conn.reset();
      co_return e;
    }
    const std::string_view block(static_cast<const char*>(x.conn->buf.data().data()), len);
    if (check_header_block(block) != BlockError::none) {
      x.conn.reset();
      co_return upstream_error(ErrorKind::upstream_protocol_error,
                               ep.address + " sent a malformed response head");
    }
    x.parser.emplace();
    auto& rp = *x.parser;
    rp.header_limit(static_cast<std::uint32_t>(lim.max_header_bytes + 1));
    rp.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (r.head.head) rp.skip(true);
    error_code ec;
    rp.put(net::buffer(block.data(), block.size()), ec);
    if (ec || !rp.is_header_done()) {
      x.parser.reset();
      x.conn.reset();
      co_return upstream_error(ErrorKind::upstream_protocol_error,
                               ep.address + " sent a malformed response: " +
                                   (ec ? ec.message() : std::string("incomplete head")));
    }
    x.conn->buf.consume(len);
    const unsigned code = rp.get().result_int();
    if (code < 100 || code >= 200) break;
    if (code == 101) {
      x.parser.reset();
      x.conn.reset();
      co_return upstream_error(ErrorKind::upstream_protocol_error,
                               ep.address + " switched protocols, which gw does not relay");
    }
    if (r.head.version >= 11 && code != 100) {
      // 103 Early Hints and friends go to the client as they are.
      out_.assign(block.data(), block.size());
      if (co_await write_all(down_, net::buffer(out_), Clock::now() + lim.idle_timeout))
        co_return client_error(ErrorKind::bad_request, "client went away");
    }
  }
  co_return std::nullopt;
}

// ---- phase: response filters, then the response to the client

net::awaitable<std::optional<ProxyError>> Session::respond(RequestContext& r, Exchange& x) {
  const Limits& lim = w_.limits;
  auto& res = x.parser->get();
  policy::FilterContext& ctx = r.filters;
  const unsigned code = res.result_int();
  r.out.upstream_status = code;
  const std::string endpoint(r.out.endpoint);
  const policy::BodyMode mode = r.chain->response_body();
  auto plan = plan_response(res, x.parser->keep_alive(), r.head, r.head.keep_alive && !w_.draining,
                            mode == policy::BodyMode::stream);
  if (!plan) co_return upstream_error(ErrorKind::upstream_protocol_error, endpoint + " " + plan.error());

  // on_response, in reverse order: a filter may change the head's fields, or answer instead.
  const ResponseHeadView view(res);
  if (r.filters_ran) {
    const auto filters = r.chain->filters();
    ctx.response = &view;
    for (std::size_t i = filters.size(); i-- > 0;) {
      ctx.position = i;
      policy::Verdict v = filters[i]->on_response(ctx);
      if (v.type() != policy::Verdict::Type::reply) continue;
      // The upstream's answer is dropped, so is its connection (its body was not read).
      policy::LocalReply& lr = v.reply();
      lr.headers.insert(lr.headers.end(), ctx.edits.response_add.begin(),
                        ctx.edits.response_add.end());
      if (!lr.detail.empty()) r.out.error_detail = lr.detail;
      x.conn.reset();
      handle_->up = nullptr;
      ctx.response = nullptr;
      co_await reply(r, lr, false);
      co_return std::nullopt;
    }
  }
  r.out.status = code;
  r.head.keep_alive = plan->keep_alive;

  BodyReader<false> rd(plan->body, plan->length, *x.parser, scratch_);
  Deadlines dl{std::chrono::milliseconds(r.route->timeout_ms), lim.idle_timeout};
  Pumped p;
  std::string whole;
  const bool collect = mode == policy::BodyMode::whole && plan->body != BodyKind::none;
  if (collect) {
    // Whole-body filters: read it all (bounded by the route's max_body), let them change it,
    // then send it with its new length.
    BodyReader<false> bounded(plan->body, plan->length, *x.parser, scratch_,
                              r.route->max_body ? r.route->max_body : 8 << 20);
    BodyWriter none(false);
    std::uint64_t ignored = 0;
    p = co_await pump(bounded, x.conn->socket, x.conn->buf, dl, nullptr, none, {}, ignored, &whole);
    if (p.what == Pumped::What::too_large)
      co_return upstream_error(ErrorKind::upstream_protocol_error,
                               endpoint + " sent a body larger than the route's max_body");
    if (p.ok()) {
      const auto filters = r.chain->filters();
      for (std::size_t i = filters.size(); i-- > 0;) {
        const policy::BodyMode m = filters[i]->response_body();
        if (m == policy::BodyMode::none) continue;
        ctx.position = i;
        policy::Verdict v = filters[i]->on_response_body(ctx, whole, m == policy::BodyMode::whole);
        if (m == policy::BodyMode::stream && v.type() != policy::Verdict::Type::reply) {
          // A stream filter on this route gets what it gets streaming: the body (here in one
          // piece), then the end, whose result is appended.
          tapbuf_.clear();
          v = filters[i]->on_response_body(ctx, tapbuf_, true);
          whole += tapbuf_;
        }
        if (v.type() != policy::Verdict::Type::reply) continue;
        policy::LocalReply& lr = v.reply();
        lr.headers.insert(lr.headers.end(), ctx.edits.response_add.begin(),
                          ctx.edits.response_add.end());
        if (!lr.detail.empty()) r.out.error_detail = lr.detail;
        x.conn.reset();
        handle_->up = nullptr;
        ctx.response = nullptr;
        co_await reply(r, lr, false);
        co_return std::nullopt;
      }
      plan->body = BodyKind::length;
      plan->length = whole.size();
      plan->length_known = true;
      plan->to_chunked = false;
    }
  }
  out_.clear();
  build_response_head(res, *plan, r.head, ctx.edits, out_);
  // A whole body that could not be read has sent nothing yet: the client gets the error reply.
  r.out.response_started = !collect || p.ok();
  if (collect && p.ok()) {
    std::array<net::const_buffer, 2> bufs{net::buffer(out_), net::buffer(whole)};
    if (auto ec = co_await write_all(down_, bufs, Clock::now() + lim.idle_timeout))
      p = Pumped{Pumped::What::write_failed, ec, false};
    else
      r.out.bytes_out += out_.size() + whole.size();
  } else if (!collect) {
    BodyWriter wr(plan->to_chunked);
    // A response without a body (HEAD, 204, 304, an empty one) has nothing for stream filters,
    // and nothing they might return at its end may follow its head: it would be read as the
    // start of the next response.
    const bool tap = mode == policy::BodyMode::stream && plan->body != BodyKind::none;
    p = co_await pump(rd, x.conn->socket, x.conn->buf, dl, &down_, wr, out_, r.out.bytes_out,
                      nullptr, tap ? &r : nullptr);
  }
  ctx.response = nullptr; // it views the exchange, which ends here
  if (!p.ok()) {
    r.head.keep_alive = false;
    x.conn.reset();
    handle_->up = nullptr;
    switch (p.what) {
    case Pumped::What::write_failed:
      co_return client_error(ErrorKind::bad_request, "writing to the client: " + p.ec.message());
    case Pumped::What::malformed:
      co_return upstream_error(ErrorKind::upstream_protocol_error,
                               endpoint + " sent a malformed body: " + p.ec.message());
    case Pumped::What::early_end:
      co_return upstream_error(ErrorKind::upstream_protocol_error,
                               endpoint + " ended the body early");
    case Pumped::What::filter_failed:
      // The gateway's own failure: not the upstream's, nor retryable; handle_one closes the
      // connection, since the head is out.
      co_return ProxyError{ErrorKind::internal, ProxyError::Source::gateway, false,
                           std::move(r.out.error_detail)};
    default:
      co_return upstream_error(ErrorKind::upstream_protocol_error,
                               plan->body == BodyKind::length
                                   ? endpoint + " ended the body early: " + p.ec.message()
                                   : endpoint + " failed during the body: " + p.ec.message());
    }
  }
  // The upstream connection goes back to the pool only after a clean exchange.
  if (plan->body != BodyKind::until_close && plan->upstream_reusable)
    upstream::checkin(*x.ep, std::move(x.conn), lim.max_idle_per_endpoint, Clock::now());
  x.conn.reset();
  handle_->up = nullptr;
  co_return std::nullopt;
}

// ---- the relay, both directions

template <bool isRequest>
net::awaitable<Pumped> Session::pump(BodyReader<isRequest>& rd, tcp::socket& from,
                                     beast::flat_buffer& in, const Deadlines& dl, tcp::socket* to,
                                     BodyWriter& wr, std::string_view prefix,
                                     std::uint64_t& written, std::string* sink,
                                     RequestContext* tap) {
  bool eof = false;
  // A response whose body breaks off still gets its head (it was committed to when the head was
  // read), then the connection closes; a request whose body is bad never reaches the upstream.
  const auto failed = [&](Pumped p) -> net::awaitable<Pumped> {
    if (!isRequest && !prefix.empty() && to) {
      if (!co_await write_all(*to, net::buffer(prefix), dl.write())) written += prefix.size();
      prefix = {};
    }
    co_return p;
  };
  // Response filters that asked for the body as it streams, in reverse order. One that answers
  // (it failed) cannot change the status any more: the response ends there, unfinished.
  const auto tap_piece = [&](std::string& piece, bool last) {
    const auto filters = tap->chain->filters();
    for (std::size_t i = filters.size(); i-- > 0;) {
      tap->filters.position = i;
      if (filters[i]->response_body() != policy::BodyMode::stream) continue;
      policy::Verdict v = filters[i]->on_response_body(tap->filters, piece, last);
      if (v.type() == policy::Verdict::Type::reply) {
        tap->out.error_detail = std::move(v.reply().detail);
        return false;
      }
    }
    return true;
  };
  for (;;) {
    auto step = rd.next(in, eof);
    using S = typename BodyReader<isRequest>::Status;
    switch (step.status) {
    case S::data: {
      std::string_view piece = step.data;
      if (sink) {
        sink->append(piece);
        continue;
      }
      if (tap) {
        tapbuf_.assign(piece);
        if (!tap_piece(tapbuf_, false))
          co_return co_await failed(Pumped{Pumped::What::filter_failed, {}, false});
        piece = tapbuf_;
      }
      const auto f = wr.frame(piece);
      const std::array<net::const_buffer, 4> bufs{net::buffer(prefix), f[0], f[1], f[2]};
      if (auto ec = co_await write_all(*to, bufs, dl.write()))
        co_return Pumped{Pumped::What::write_failed, ec, false};
      written += net::buffer_size(bufs);
      prefix = {};
      continue;
    }
    case S::need_input: {
      if (eof) co_return co_await failed(Pumped{Pumped::What::early_end, {}, false});
      // The head goes out now if nothing came with it: a client waits for a streamed
      // response's head, an upstream for the head of a request whose body is slow to come.
      if (!prefix.empty() && to) {
        if (auto ec = co_await write_all(*to, net::buffer(prefix), dl.write()))
          co_return Pumped{Pumped::What::write_failed, ec, false};
        written += prefix.size();
        prefix = {};
      }
      arm(dl.read());
      auto [ec, n] = co_await from.async_read_some(in.prepare(16384), kTuple);
      if (ec == net::error::eof) {
        eof = true;
        continue;
      }
      if (ec) co_return co_await failed(Pumped{Pumped::What::read_failed, ec, timed_out()});
      in.commit(n);
      continue;
    }
    case S::done: {
      if (sink) co_return Pumped{};
      std::string_view rest;
      if (tap) {
        tapbuf_.clear();
        // Failing here, the last chunk is not sent: a chunked client sees the body break off.
        if (!tap_piece(tapbuf_, true))
          co_return co_await failed(Pumped{Pumped::What::filter_failed, {}, false});
        rest = tapbuf_;
      }
      std::string trailers;
      rd.append_trailers(trailers);
      const auto f = wr.frame(rest);
      const std::string_view end = wr.finish(trailers);
      const std::array<net::const_buffer, 5> bufs{net::buffer(prefix), f[0], f[1], f[2],
                                                  net::buffer(end)};
      if (net::buffer_size(bufs) > 0) {
        if (auto ec = co_await write_all(*to, bufs, dl.write()))
          co_return Pumped{Pumped::What::write_failed, ec, false};
        written += net::buffer_size(bufs);
      }
      co_return Pumped{};
    }
    case S::malformed:
      co_return co_await failed(Pumped{Pumped::What::malformed, step.ec, false});
    case S::too_large:
      co_return co_await failed(Pumped{Pumped::What::too_large, {}, false});
    }
  }
}

// ---- local replies

net::awaitable<void> Session::reply(RequestContext& r, const policy::LocalReply& lr, bool close) {
  r.out.status = lr.effective_status();
  if (r.out.status >= 400) r.out.error = name_of(lr.kind);
  if (close) r.close = true;
  const bool keep = r.head.keep_alive && !r.close && !w_.draining;
  out_.clear();
  render_local_reply(lr, r.head, keep, out_);
  const error_code ec =
      co_await write_all(down_, net::buffer(out_), Clock::now() + w_.limits.idle_timeout);
  if (ec)
    r.close = true;
  else
    r.out.bytes_out += out_.size();
}

net::awaitable<void> Session::reply(RequestContext& r, ErrorKind kind, std::string message,
                                    bool close) {
  policy::LocalReply lr;
  lr.kind = kind;
  lr.message = std::move(message);
  co_await reply(r, lr, close);
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

} // namespace

net::awaitable<void> serve_connection(WorkerContext& w, tcp::socket socket) {
  Session s(w, std::move(socket));
  co_await s.run();
}

} // namespace gw::proxy
