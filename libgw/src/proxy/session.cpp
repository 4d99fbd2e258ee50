// The downstream session: reads requests from one client connection, routes them, and relays
// each to an upstream and back, streaming bodies in both directions. One coroutine per
// connection, on its worker's io_context; requests on a connection are handled in order, so
// pipelined requests are answered in order.
//
// Header blocks are read and checked here (bare CR/LF, obs-fold, NUL) before Beast's parser sees
// them, then framing is checked again (duplicate Content-Length, transfer codings other than
// chunked, Host rules), so that no request can be read two ways. Outgoing heads are written by
// hand from the parsed fields, leaving out hop-by-hop fields; bodies are re-framed, never copied
// through raw, except Content-Length bodies, which are counted byte for byte.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <charconv>
#include <optional>

#include "gw/core/text.hpp"
#include "gw/wire/local_reply.hpp"
#include "gw/redis/client.hpp"
#include "gw/router/route_table.hpp"
#include "gw/uri/normalize.hpp"
#include "worker_state.hpp"

namespace gw::proxy {

using namespace gw::wire;
namespace http = beast::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);
using error_code = boost::system::error_code;

namespace {
tcp::endpoint to_endpoint(const runtime::ResolvedEndpoint& ep) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&ep.addr);
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ep.addr);
    return tcp::endpoint(net::ip::address_v4(ntohl(in->sin_addr.s_addr)), ntohs(in->sin_port));
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ep.addr);
  net::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), &in6->sin6_addr, 16);
  return tcp::endpoint(net::ip::address_v6(b, in6->sin6_scope_id), ntohs(in6->sin6_port));
}

void apply_state(EndpointRuntime& e, runtime::EndpointState st) {
  e.state = st;
  e.load.usable = st == runtime::EndpointState::ready;
  if (st == runtime::EndpointState::maint) e.idle.clear();
}
} // namespace

void WorkerState::install(runtime::SnapshotPtr s, const runtime::Overrides& overrides) {
  auto ws = std::make_shared<WorkerSnapshot>();
  ws->snap = std::move(s);
  const auto& cfg = ws->snap->config();
  const std::shared_ptr<WorkerSnapshot> previous = current;
  for (std::uint32_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& up = cfg.upstreams[i];
    auto ur = std::make_shared<UpstreamRuntime>();
    for (const auto& ep : ws->snap->endpoints(i)) {
      auto& slot = endpoints[up.name + "\n" + ep.address];
      if (!slot) {
        slot = std::make_shared<EndpointRuntime>();
        slot->upstream = up.name;
        slot->address = ep.address;
        auto o = overrides.find({up.name, ep.address});
        apply_state(*slot, o == overrides.end() ? runtime::EndpointState::ready : o->second);
      }
      slot->addr = to_endpoint(ep);
      slot->load.weight = ep.weight;
      ur->endpoints.push_back(slot);
      ur->loads.push_back(&slot->load);
      ur->ids.push_back(slot->address);
    }
    // An unchanged upstream keeps its balancer (e.g. its round-robin position).
    if (previous) {
      const auto& pcfg = previous->snap->config();
      for (std::uint32_t k = 0; k < pcfg.upstreams.size(); ++k) {
        auto& old = previous->upstreams[k];
        if (pcfg.upstreams[k].name == up.name && pcfg.upstreams[k].balance == up.balance &&
            pcfg.upstreams[k].hash_on == up.hash_on && old->endpoints == ur->endpoints) {
          ur->balancer = std::move(old->balancer);
          // Requests still on the old generation may pick again (retries): give them their own.
          old->balancer =
              upstream::Balancer::make(up.balance, old->loads, old->ids, 0x5eed + id * 7919 + k);
        }
      }
    }
    if (!ur->balancer)
      ur->balancer =
          upstream::Balancer::make(up.balance, ur->loads, ur->ids, 0x5eed + id * 7919 + i);
    ur->stats = &upstream_stats[up.name];
    ws->upstreams.push_back(std::move(ur));
  }
  for (const auto& r : cfg.routes)
    ws->route_stats.push_back(&route_stats[r.name]);
  current = std::move(ws);
}

void WorkerState::set_override(const std::string& upstream, const std::string& address,
                               runtime::EndpointState st) {
  auto it = endpoints.find(upstream + "\n" + address);
  if (it != endpoints.end()) apply_state(*it->second, st);
}

observe::StatsView WorkerState::stats() const {
  observe::StatsView v;
  for (const auto& [k, c] : route_stats)
    v.routes[k] = c;
  for (const auto& [k, c] : upstream_stats)
    v.upstreams[k] = c;
  v.unrouted = unrouted;
  v.connections = sessions.size();
  v.rate_limit_store_errors = filter_counters.rate_limit_store_errors;
  for (const auto& [k, e] : endpoints) {
    if (e.use_count() == 1) continue; // no table generation lists it and no request holds it
    v.endpoints.push_back(observe::EndpointView{
        e->upstream, e->address, std::string(runtime::to_string(e->state)), e->load.weight,
        e->load.active, e->idle.size(), e->requests, e->failures});
  }
  return v;
}

void WorkerState::expire_sessions(Clock::time_point now) {
  boost::system::error_code ec;
  for (auto& h : sessions) {
    if (h.timed_out || now < h.deadline) continue;
    h.timed_out = true;
    if (h.down) h.down->cancel(ec);
    if (h.up) h.up->cancel(ec);
  }
}

void WorkerState::sweep_pools(Clock::time_point now) {
  for (auto it = endpoints.begin(); it != endpoints.end();) {
    auto& e = *it->second;
    std::erase_if(e.idle, [&](const std::unique_ptr<PooledConnection>& c) {
      return now - c->idle_since > opts.upstream_idle_timeout;
    });
    // An endpoint that no table generation lists any more, and no request holds, goes away.
    if (it->second.use_count() == 1)
      it = endpoints.erase(it);
    else
      ++it;
  }
}

namespace {

/// A failure with the local reply it maps to.
struct Failure {
  ErrorKind kind;
  std::string message;
};

std::string_view sv(boost::core::string_view s) {
  return {s.data(), s.size()};
}

using text::iequals;

/// Tokens of a Connection header (at most 16 kept; more is an attack, not a client).
struct ConnectionTokens {
  std::array<std::string_view, 16> names;
  std::size_t n = 0;
  bool close = false, keep_alive = false;
  void add(std::string_view value) {
    while (!value.empty()) {
      const auto comma = value.find(',');
      std::string_view t = value.substr(0, comma);
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
        t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
        t.remove_suffix(1);
      if (iequals(t, "close"))
        close = true;
      else if (iequals(t, "keep-alive"))
        keep_alive = true;
      else if (!t.empty() && n < names.size())
        names[n++] = t;
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  bool lists(std::string_view field) const {
    for (std::size_t i = 0; i < n; ++i)
      if (iequals(names[i], field)) return true;
    return false;
  }
};

bool hop_by_hop(http::field f, std::string_view name) {
  switch (f) {
  case http::field::connection:
  case http::field::keep_alive:
  case http::field::proxy_connection:
  case http::field::te:
  case http::field::trailer:
  case http::field::transfer_encoding:
  case http::field::upgrade:
  case http::field::proxy_authenticate:
  case http::field::proxy_authorization:
    return true;
  case http::field::unknown:
    return is_hop_by_hop(name);
  default:
    return false;
  }
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(p - buf));
}

void append_hex(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
  out.append(buf, static_cast<std::size_t>(p - buf));
}

void header(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

/// Writes a headers policy's set and add operations.
void append_ops(std::string& out, const policy::HeaderOps& ops) {
  for (const auto& [k, v] : ops.set)
    header(out, k, v);
  for (const auto& [k, v] : ops.add)
    header(out, k, v);
}

/// What policies see of a request: its parsed head.
class HeadView final : public policy::RequestView {
public:
  HeadView(const http::request<http::buffer_body>& req, std::string_view method,
           std::string_view path, std::string_view query, std::string_view host,
           std::string_view ip, std::string_view id)
      : req_(req), method_(method), path_(path), query_(query), host_(host), ip_(ip), id_(id) {}
  std::string_view method() const noexcept override { return method_; }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    auto it = req_.find(boost::core::string_view(name.data(), name.size()));
    if (it == req_.end()) return std::nullopt;
    return std::string_view(it->value().data(), it->value().size());
  }
  void for_each_header(const std::function<void(std::string_view, std::string_view)>& fn)
      const override {
    for (const auto& f : req_)
      fn(sv(f.name_string()), sv(f.value()));
  }
  std::string_view path() const noexcept override { return path_; }
  std::string_view query() const noexcept override { return query_; }
  std::string_view host() const noexcept override { return host_; }
  std::string_view client_ip() const noexcept override { return ip_; }
  std::string_view request_id() const noexcept override { return id_; }

private:
  const http::request<http::buffer_body>& req_;
  std::string_view method_, path_, query_, host_, ip_, id_;
};

void append_fields(std::string& out, const policy::HeaderList& fields) {
  for (const auto& [k, v] : fields)
    header(out, k, v);
}

bool valid_host(std::string_view h) {
  for (const char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-._~!$&'()*+,;=:[]%").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

enum class BodyKind : std::uint8_t { none, length, chunked, until_close };

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

class Session {
public:
  Session(WorkerState& w, tcp::socket socket) : w_(w), down_(std::move(socket)) {
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
    body_.resize(16 * 1024);
  }

  net::awaitable<void> run() {
    handle_ = w_.sessions.insert(w_.sessions.end(), SessionHandle{});
    handle_->down = &down_;
    while (!w_.draining) {
      handle_->idle = true;
      if (dbuf_.size() == 0) {
        arm(Clock::now() + w_.opts.idle_timeout);
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
  struct Request; // per-request state, below

  /// Handles one request; returns false when the connection must close.
  net::awaitable<bool> handle_one();

  /// gwd's own log line for an upstream failure (rate-limited), with the detail.
  void report_upstream_failure(const Request& r, ErrorKind kind);
  net::awaitable<bool> reply_local(Request& r, ErrorKind kind, std::string message,
                                   const policy::HeaderList* extra_headers = nullptr,
                                   bool close = false);
  net::awaitable<std::optional<Failure>> forward(Request& r);
  /// Runs the route's filters' on_request hooks in order, performing the I/O they ask for;
  /// fills ctx_. Returns the reply of the filter that answered, if one did.
  net::awaitable<std::optional<policy::LocalReply>> run_filters(Request& r,
                                                                const policy::RouteChain& chain);
  /// Writes a filter's reply, with the response fields the filters before it added.
  net::awaitable<bool> reply_filter(Request& r, policy::LocalReply&& reply, bool close);
  /// Writes the filters' log lines (ctx_.notes) and forgets them.
  void write_notes(const Request& r);
  redis::Client& redis_for(const policy::RedisTake& t);

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

  WorkerState& w_;
  tcp::socket down_;
  beast::flat_buffer dbuf_{64 * 1024 + 8192};
  std::string peer_ip_;
  bool peer_trusted_ = false;
  std::string out_;        // head to the client, reused
  std::string uphead_;     // head to the upstream, reused
  std::string chunk_line_; // chunk-size line, reused
  Forwarding fwd_;         // forwarding headers, reused
  std::vector<char> body_; // body relay buffer, reused
  std::string pathbuf_;    // canonical path when it differs from the target
  policy::FilterContext ctx_; // the caller and the request's edits, as the filters left them
  std::string qbuf_;    // the forwarded query when policies change it
  std::string namebuf_; // a query parameter's decoded name
  std::list<SessionHandle>::iterator handle_;
};

struct Session::Request {
  std::int64_t start_us = 0;
  Clock::time_point start;
  std::shared_ptr<WorkerSnapshot> ws; // pinned generation: table, upstream state, stats slots
  const runtime::Snapshot* snap = nullptr;
  std::optional<http::request_parser<http::buffer_body>> parser;
  std::string_view method;
  model::Method method_id = model::Method::GET;
  std::string_view target, host, path, query;
  std::string absolute_host; // host from an absolute-form target
  unsigned version = 11;
  bool keep_alive = true;
  bool head = false;
  bool expect_continue = false;
  BodyKind body = BodyKind::none;
  std::uint64_t content_length = 0;
  ConnectionTokens conn;
  std::array<char, 32> id_buf{};
  std::string_view request_id;
  std::string_view client; // the peer, or the client a trusted proxy names (client_address)
  std::optional<std::uint64_t> max_forwards;
  router::Match match;
  const model::Route* route = nullptr;
  // outcome, for the log
  unsigned status = 0, upstream_status = 0, attempts = 0;
  std::string_view endpoint, error;
  std::string error_detail; // what went wrong upstream, for the log only (it names addresses)
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::int64_t upstream_us = 0;
  bool response_started = false;
};

net::awaitable<bool> Session::reply_local(Request& r, ErrorKind kind, std::string message,
                                          const policy::HeaderList* extra_headers, bool close) {
  r.status = status_of(kind);
  r.error = name_of(kind);
  std::string body;
  render_reply_body(kind, message, r.request_id, body);
  const bool keep = r.keep_alive && !close && !w_.draining;
  out_.clear();
  out_ += "HTTP/1.1 ";
  append_number(out_, r.status);
  out_ += ' ';
  out_ += reason_phrase(r.status);
  out_ += "\r\ncontent-type: application/json\r\ncontent-length: ";
  append_number(out_, body.size());
  out_ += "\r\n";
  if (!r.request_id.empty()) header(out_, "x-request-id", r.request_id);
  if (extra_headers) append_fields(out_, *extra_headers);
  if (!keep)
    out_ += "connection: close\r\n";
  else if (r.version == 10)
    out_ += "connection: keep-alive\r\n";
  out_ += "\r\n";
  if (!r.head) out_ += body;
  const error_code ec =
      co_await write_all(down_, net::buffer(out_), Clock::now() + w_.opts.idle_timeout);
  if (!ec) r.bytes_out += out_.size();
  co_return !ec && keep;
}

net::awaitable<bool> Session::handle_one() {
  Request r;
  r.start = Clock::now();
  r.start_us = now_us();
  r.ws = w_.current;
  r.snap = r.ws->snap.get(); // pinned: a reload during this request does not change its view
  const auto& opts = w_.opts;
  auto log = [&] {
    const auto elapsed = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - r.start).count());
    observe::Counters& c = r.route ? *r.ws->route_stats[r.match.route] : w_.unrouted;
    ++c.requests;
    c.record_status(r.status);
    c.bytes_in += r.bytes_in;
    c.bytes_out += r.bytes_out;
    c.latency.add(elapsed);
    if (!r.error.empty()) ++c.local_replies;
    if (r.route && r.upstream_status) {
      observe::Counters& u = *r.ws->upstreams[r.route->upstream]->stats;
      ++u.requests;
      u.record_status(r.upstream_status);
      u.latency.add(static_cast<std::uint64_t>(r.upstream_us));
    }
    write_notes(r);
    if (!w_.log.enabled()) return;
    observe::AccessRecord rec;
    rec.time_us = r.start_us;
    rec.worker = w_.id;
    rec.generation = r.snap->generation();
    rec.request_id = r.request_id;
    rec.client = r.client.empty() ? std::string_view(peer_ip_) : r.client;
    rec.method = r.method;
    rec.host = r.host;
    rec.path = r.path.empty() ? r.target : r.path;
    rec.query = r.query;
    if (r.route) {
      rec.route = r.route->name;
      rec.consumer = ctx_.identity.consumer;
      rec.secret_params = r.snap->policies().route(r.match.route).facts().secret_params;
      rec.upstream = r.snap->config().upstreams[r.route->upstream].name;
    }
    rec.endpoint = r.endpoint;
    rec.error = r.error;
    rec.error_detail = r.error_detail;
    rec.status = r.status;
    rec.upstream_status = r.upstream_status;
    rec.attempts = r.attempts;
    rec.bytes_in = r.bytes_in;
    rec.bytes_out = r.bytes_out;
    rec.duration_us = elapsed;
    rec.upstream_us = static_cast<std::uint64_t>(r.upstream_us);
    w_.log.add(rec);
  };

  // 1. The head.
  std::size_t head_len = 0;
  arm(r.start + opts.header_timeout);
  const HeadStatus hs = co_await read_head(down_, dbuf_, opts.max_header_bytes, head_len, *handle_);
  r.keep_alive = false; // until the head says otherwise
  switch (hs) {
  case HeadStatus::ok:
    break;
  case HeadStatus::eof_before_any:
    co_return false;
  case HeadStatus::io_error:
    co_return false;
  case HeadStatus::timeout: {
    const bool ok = co_await reply_local(r, ErrorKind::request_timeout,
                                         "the request head did not arrive in time", nullptr, true);
    log();
    co_return ok;
  }
  case HeadStatus::too_large: {
    // Messages are built before co_await: GCC 12 mishandles non-trivial temporaries inside a
    // co_await expression (they can be destroyed twice).
    std::string msg =
        "the request head is larger than " + std::to_string(opts.max_header_bytes) + " bytes";
    co_await reply_local(r, ErrorKind::header_too_large, std::move(msg), nullptr, true);
    log();
    co_return false;
  }
  case HeadStatus::malformed: {
    co_await reply_local(r, ErrorKind::bad_request, "malformed line endings in the request head",
                         nullptr, true);
    log();
    co_return false;
  }
  }
  const std::string_view block(static_cast<const char*>(dbuf_.data().data()), head_len);
  auto bad = [&](ErrorKind k, std::string msg) -> net::awaitable<bool> {
    dbuf_.consume(dbuf_.size()); // the rest of the stream cannot be trusted
    co_await reply_local(r, k, std::move(msg), nullptr, true);
    log();
    co_return false;
  };
  switch (check_header_block(block)) {
  case BlockError::none:
    break;
  case BlockError::obs_fold:
    co_return co_await bad(ErrorKind::bad_request, "obsolete line folding in a header field");
  case BlockError::bare_cr:
    co_return co_await bad(ErrorKind::bad_request, "a bare CR in the request head");
  case BlockError::bare_lf:
    co_return co_await bad(ErrorKind::bad_request, "a bare LF in the request head");
  case BlockError::nul:
    co_return co_await bad(ErrorKind::bad_request, "a NUL byte in the request head");
  }
  r.parser.emplace();
  auto& p = *r.parser;
  p.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes + 1));
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  {
    error_code ec;
    p.put(net::buffer(block.data(), block.size()), ec);
    if (ec || !p.is_header_done()) {
      if (ec == http::error::header_limit)
        co_return co_await bad(ErrorKind::header_too_large, "the request head is too large");
      std::string msg = "malformed request: " + ec.message();
      co_return co_await bad(ErrorKind::bad_request, std::move(msg));
    }
  }
  dbuf_.consume(head_len);
  r.bytes_in += head_len;
  auto& req = p.get();
  r.method = sv(req.method_string());
  r.method_id = model::classify_method(r.method);
  r.head = r.method_id == model::Method::HEAD;
  r.target = sv(req.target());
  r.version = req.version();
  r.keep_alive = p.keep_alive();

  // 2. Framing and the fields that decide it (RFC 9112 §6): one way to read a request only.
  int cl_count = 0, te_count = 0, host_count = 0;
  std::string_view cl_value, te_value, host_value, expect;
  for (const auto& f : req) {
    switch (f.name()) {
    case http::field::content_length:
      ++cl_count;
      cl_value = sv(f.value());
      break;
    case http::field::transfer_encoding:
      ++te_count;
      te_value = sv(f.value());
      break;
    case http::field::host:
      ++host_count;
      host_value = sv(f.value());
      break;
    case http::field::connection:
      r.conn.add(sv(f.value()));
      break;
    case http::field::expect:
      expect = sv(f.value());
      break;
    case http::field::unknown: // a client's id is kept when it is well formed
      if (iequals(sv(f.name_string()), "x-request-id") && acceptable_request_id(sv(f.value())))
        r.request_id = sv(f.value());
      break;
    case http::field::max_forwards: {
      std::uint64_t mf = 0;
      const auto v = sv(f.value());
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), mf);
      if (ec == std::errc() && ptr == v.data() + v.size()) r.max_forwards = mf;
      break;
    }
    default:
      break;
    }
  }
  if (r.request_id.empty()) {
    w_.ids.next(r.id_buf);
    r.request_id = std::string_view(r.id_buf.data(), r.id_buf.size());
  }
  r.client = peer_ip_;
  if (peer_trusted_)
    if (auto xff = req.find("x-forwarded-for"); xff != req.end())
      r.client = client_address(peer_ip_, true, sv(xff->value()), w_.trusted);
  if (cl_count > 1) co_return co_await bad(ErrorKind::bad_request, "more than one Content-Length");
  if (te_count > 0) {
    if (r.version < 11)
      co_return co_await bad(ErrorKind::bad_request, "Transfer-Encoding in an HTTP/1.0 request");
    if (!is_only_chunked(te_value)) {
      if (te_value.find(',') != std::string_view::npos || iequals(te_value, "identity"))
        co_return co_await bad(ErrorKind::bad_request,
                               "a transfer coding list must be exactly \"chunked\"");
      co_return co_await bad(ErrorKind::not_implemented, "unsupported transfer coding");
    }
    r.body = BodyKind::chunked;
  } else if (cl_count == 1) {
    auto n = parse_content_length(cl_value);
    if (!n) co_return co_await bad(ErrorKind::bad_request, "malformed Content-Length");
    r.content_length = *n;
    r.body = *n > 0 ? BodyKind::length : BodyKind::none;
  }
  if (host_count > 1) co_return co_await bad(ErrorKind::bad_request, "more than one Host");
  if (r.version >= 11 && host_count == 0)
    co_return co_await bad(ErrorKind::bad_request, "an HTTP/1.1 request without Host");
  if (!valid_host(host_value)) co_return co_await bad(ErrorKind::bad_request, "malformed Host");
  if (r.conn.close) r.keep_alive = false;

  // 3. The target: origin-form, or absolute-form whose authority replaces Host (RFC 9112 §3.2.2).
  if (r.target.size() > opts.max_uri_bytes) {
    std::string msg =
        "the request target is longer than " + std::to_string(opts.max_uri_bytes) + " bytes";
    co_return co_await bad(ErrorKind::uri_too_long, std::move(msg));
  }
  std::string_view origin = r.target;
  std::string absolute_target;
  r.host = host_value;
  if (!r.target.empty() && r.target[0] != '/') {
    if (r.target == "*") {
      // "OPTIONS *" asks about the server itself (RFC 9110 §9.3.7); gw answers it.
      if (r.method_id != model::Method::OPTIONS)
        co_return co_await bad(ErrorKind::bad_request, "\"*\" is only a target for OPTIONS");
      out_.clear();
      out_ += "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n";
      header(out_, "x-request-id", r.request_id);
      out_ += "\r\n";
      r.status = 200;
      auto [ec, n] = co_await net::async_write(down_, net::buffer(out_), kTuple);
      r.bytes_out += n;
      log();
      co_return !ec && r.keep_alive && r.body == BodyKind::none;
    }
    if (r.method_id == model::Method::CONNECT)
      co_return co_await bad(ErrorKind::not_implemented, "CONNECT is not supported");
    const bool http_scheme = r.target.size() > 7 &&
                             (iequals(r.target.substr(0, 7), "http://") ||
                              (r.target.size() > 8 && iequals(r.target.substr(0, 8), "https://")));
    if (!http_scheme) co_return co_await bad(ErrorKind::bad_request, "malformed request target");
    auto parts = uri::split_url(r.target);
    if (!parts) co_return co_await bad(ErrorKind::bad_request, "malformed request target");
    const auto scheme_end = r.target.find("://") + 3;
    const auto auth_end = r.target.find_first_of("/?", scheme_end);
    r.absolute_host = std::string(r.target.substr(scheme_end, auth_end == std::string_view::npos
                                                                  ? std::string_view::npos
                                                                  : auth_end - scheme_end));
    r.host = r.absolute_host;
    absolute_target = std::move(parts->target);
    origin = absolute_target;
  }
  auto target = uri::parse_target(origin, pathbuf_);
  if (!target) {
    std::string msg = "bad request target: " + target.error().message;
    co_return co_await bad(ErrorKind::bad_request, std::move(msg));
  }
  r.path = target->path;
  r.query = target->query;

  // 4. Route.
  router::Request rreq;
  rreq.host = r.host;
  rreq.method = r.method_id;
  rreq.path = r.path;
  rreq.query = r.query;
  struct FieldLookup final : router::HeaderLookup {
    const http::request_parser<http::buffer_body>::value_type* msg = nullptr;
    bool find(std::string_view name, std::string_view& v) const override {
      auto it = msg->find(boost::core::string_view(name.data(), name.size()));
      if (it == msg->end()) return false;
      v = sv(it->value());
      return true;
    }
  } lookup;
  lookup.msg = &req;
  rreq.headers = &lookup;
  r.match = r.snap->routes().match(rreq);

  // A request whose body we will not read must not leave its body in the stream.
  auto refuse = [&](ErrorKind k, std::string msg,
                    policy::HeaderList extra = {}) -> net::awaitable<bool> {
    const bool close = r.body != BodyKind::none;
    const bool ok = co_await reply_local(r, k, std::move(msg), &extra, close);
    log();
    co_return ok && !close;
  };
  if (r.max_forwards && *r.max_forwards == 0 &&
      (r.method_id == model::Method::OPTIONS || r.method_id == model::Method::TRACE)) {
    // RFC 9110 §7.6.2: the last recipient answers itself.
    if (r.method_id == model::Method::TRACE) {
      policy::HeaderList allow;
      allow.emplace_back("allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
      co_return co_await refuse(ErrorKind::method_not_allowed,
                                "TRACE is not answered by the gateway", std::move(allow));
    }
    out_.clear();
    out_ += "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n";
    header(out_, "x-request-id", r.request_id);
    if (r.match.status == router::MatchStatus::method_not_allowed)
      header(out_, "allow", r.match.allow.to_string());
    out_ += "\r\n";
    r.status = 200;
    auto [ec, n] = co_await net::async_write(down_, net::buffer(out_), kTuple);
    r.bytes_out += n;
    log();
    co_return !ec && r.keep_alive && r.body == BodyKind::none;
  }
  ctx_.reset();
  // A filter's answer; like `refuse`, the connection closes when the body stays unread.
  auto answer = [&](policy::LocalReply reply) -> net::awaitable<bool> {
    const bool close = r.body != BodyKind::none;
    const bool ok = co_await reply_filter(r, std::move(reply), close);
    log();
    co_return ok && !close;
  };
  bool filters_ran = false;
  // CORS preflights are answered by the route's cors filter, for the route the real request
  // would take.
  if (r.method_id == model::Method::OPTIONS && req.find(http::field::origin) != req.end()) {
    if (auto acrm = req.find(http::field::access_control_request_method); acrm != req.end()) {
      router::Match m = r.match;
      const auto asked = model::parse_method(sv(acrm->value()));
      auto preflights = [&](const router::Match& x) {
        return x.matched() && r.snap->policies().route(x.route).facts().answers_preflight;
      };
      if (!preflights(m) && asked) {
        rreq.method = *asked;
        m = r.snap->routes().match(rreq);
      }
      if (preflights(m)) {
        r.match = m;
        r.route = &r.snap->config().routes[m.route];
        filters_ran = true;
        if (auto reply = co_await run_filters(r, r.snap->policies().route(m.route)))
          co_return co_await answer(std::move(*reply));
      }
    }
  }
  if (!r.match.matched()) {
    if (r.match.status == router::MatchStatus::method_not_allowed) {
      std::string msg = "method " + std::string(r.method) + " is not allowed here";
      policy::HeaderList allow;
      allow.emplace_back("allow", r.match.allow.to_string());
      co_return co_await refuse(ErrorKind::method_not_allowed, std::move(msg), std::move(allow));
    }
    std::string msg = "no route for " + std::string(r.method) + " " + std::string(r.path);
    co_return co_await refuse(ErrorKind::no_route, std::move(msg));
  }
  r.route = &r.snap->config().routes[r.match.route];
  if (r.route->max_body && r.body == BodyKind::length && r.content_length > r.route->max_body) {
    std::string msg =
        "the request body is larger than " + std::to_string(r.route->max_body) + " bytes";
    co_return co_await refuse(ErrorKind::body_too_large, std::move(msg));
  }
  if (!expect.empty()) {
    if (!iequals(expect, "100-continue"))
      co_return co_await refuse(ErrorKind::expectation_failed, "only 100-continue is understood");
    r.expect_continue = r.version >= 11 && r.body != BodyKind::none;
  }

  // 5. Policies: authentication, access control, rate limits, then transforms (in forward).
  if (const auto& chain = r.snap->policies().route(r.match.route); !chain.empty() && !filters_ran)
    if (auto reply = co_await run_filters(r, chain)) co_return co_await answer(std::move(*reply));

  // 6. Forward.
  auto failure = co_await forward(r);
  if (failure) {
    r.error_detail = std::move(failure->message);
    if (upstream_failure(failure->kind)) report_upstream_failure(r, failure->kind);
    if (r.response_started) {
      r.error = name_of(failure->kind);
      log();
      co_return false; // the head is out; only closing can signal the failure
    }
    std::string msg(client_message(failure->kind, r.error_detail));
    const bool ok = co_await reply_local(r, failure->kind, std::move(msg), nullptr, true);
    log();
    co_return ok;
  }
  log();
  co_return r.keep_alive && !w_.draining;
}

void Session::report_upstream_failure(const Request& r, ErrorKind kind) {
  // One line per second per worker at most: a dead upstream must not flood gwd's log. Every
  // failure is in the access log, with the same detail.
  const auto now = Clock::now();
  if (now - w_.last_upstream_error_log < 1s) return;
  w_.last_upstream_error_log = now;
  const char* up = r.route ? r.snap->config().upstreams[r.route->upstream].name.c_str() : "-";
  std::fprintf(stderr, "gwd: upstream \"%s\": %s (%s, request_id %.*s)\n", up,
               r.error_detail.c_str(), std::string(name_of(kind)).c_str(),
               static_cast<int>(r.request_id.size()), r.request_id.data());
}

redis::Client& Session::redis_for(const policy::RedisTake& t) {
  auto& c = w_.redis[t.server];
  if (!c) c = std::make_unique<redis::Client>(w_.ioc.get_executor(), t.host, t.port, t.timeout);
  return *c;
}

net::awaitable<std::optional<policy::LocalReply>>
Session::run_filters(Request& r, const policy::RouteChain& chain) {
  const HeadView view(r.parser->get(), r.method, r.path, r.query, r.host, r.client,
                      r.request_id);
  ctx_.request = &view;
  ctx_.route = r.route->name;
  ctx_.now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  ctx_.counters = &w_.filter_counters;
  chain.begin(ctx_);
  std::optional<policy::LocalReply> reply;
  const auto filters = chain.filters();
  for (std::size_t i = 0; i < filters.size() && !reply; ++i) {
    ctx_.position = i;
    policy::Verdict v = filters[i]->on_request(ctx_);
    while (v.type() == policy::Verdict::Type::call) {
      auto* take = std::get_if<policy::RedisTake>(&v.call());
      if (!take) { // HTTP calls have no client here yet
        policy::LocalReply internal;
        internal.kind = ErrorKind::internal;
        internal.message = "the route's policy asked for an HTTP call, which is not supported";
        v = policy::Verdict::respond(std::move(internal));
        break;
      }
      auto res = co_await redis_for(*take).take(take->key, take->interval_us, take->burst);
      policy::RedisReply got;
      got.ok = res.has_value();
      if (res) {
        got.allowed = res->allowed;
        got.remaining = res->remaining;
        got.retry_after_ms = res->retry_after_ms;
        got.reset_ms = res->reset_ms;
      } else {
        got.error = res.error().message;
      }
      v = filters[i]->resume(ctx_, policy::IoResult(std::move(got)));
    }
    if (v.type() == policy::Verdict::Type::reply) reply = std::move(v.reply());
  }
  ctx_.request = nullptr; // the view ends here
  co_return reply;
}

net::awaitable<bool> Session::reply_filter(Request& r, policy::LocalReply&& reply, bool close) {
  // What earlier filters added to the response (CORS, RateLimit) goes on their replies too: a
  // browser may read a 401 only with the CORS fields on it.
  reply.headers.insert(reply.headers.end(), ctx_.edits.response_add.begin(),
                       ctx_.edits.response_add.end());
  if (!reply.body)
    co_return co_await reply_local(r, reply.kind, std::move(reply.message), &reply.headers, close);
  // A body of the filter's own (a preflight's empty 204).
  r.status = reply.effective_status();
  if (r.status >= 400) r.error = name_of(reply.kind);
  const bool keep = r.keep_alive && !close && !w_.draining;
  // RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content (and 204 no Content-Length).
  const bool no_content = r.status < 200 || r.status == 204 || r.status == 304;
  out_.clear();
  out_ += "HTTP/1.1 ";
  append_number(out_, r.status);
  out_ += ' ';
  out_ += reason_phrase(r.status);
  out_ += "\r\n";
  if (!reply.content_type.empty()) header(out_, "content-type", reply.content_type);
  if (!no_content) {
    out_ += "content-length: ";
    append_number(out_, reply.body->size());
    out_ += "\r\n";
  }
  append_fields(out_, reply.headers);
  if (!r.request_id.empty()) header(out_, "x-request-id", r.request_id);
  if (!keep)
    out_ += "connection: close\r\n";
  else if (r.version == 10)
    out_ += "connection: keep-alive\r\n";
  out_ += "\r\n";
  if (!r.head && !no_content) out_ += *reply.body;
  const error_code ec =
      co_await write_all(down_, net::buffer(out_), Clock::now() + w_.opts.idle_timeout);
  if (!ec) r.bytes_out += out_.size();
  co_return !ec && keep;
}

void Session::write_notes(const Request& r) {
  for (const auto& [line, limited] : ctx_.notes) {
    if (limited) {
      // One line per second per worker at most: a dead store must not flood gwd's log.
      const auto now = Clock::now();
      if (now - w_.last_note_log < 1s) continue;
      w_.last_note_log = now;
    }
    std::fprintf(stderr, "gwd: %s (request_id %.*s)\n", line.c_str(),
                 static_cast<int>(r.request_id.size()), r.request_id.data());
  }
  ctx_.notes.clear();
}

net::awaitable<std::optional<Failure>> Session::forward(Request& r) {
  const auto& opts = w_.opts;
  const auto& cfg = r.snap->config();
  const model::Route& route = *r.route;
  const model::Upstream& up = cfg.upstreams[route.upstream];
  UpstreamRuntime& ur = *r.ws->upstreams[route.upstream]; // held by the pinned generation
  auto& req = r.parser->get();

  const auto route_deadline = r.start + std::chrono::milliseconds(route.timeout_ms);
  const bool idempotent = r.method_id == model::Method::GET || r.method_id == model::Method::HEAD ||
                          r.method_id == model::Method::OPTIONS ||
                          r.method_id == model::Method::TRACE ||
                          r.method_id == model::Method::PUT || r.method_id == model::Method::DELETE;

  // The upstream head, built once for every attempt.
  std::string& head = uphead_;
  head.clear();
  head += r.method;
  head += ' ';
  router::append_rewritten_path(head, route, r.match.params(), r.path);
  std::string_view query = r.query;
  if (ctx_.edits.query_changes()) {
    // Parameters policies consume (API keys) or replace are dropped; set ones appended.
    // Names are compared decoded, as policies read them: "api%5Fkey" is the parameter "api_key".
    qbuf_.clear();
    uri::for_each_raw_param(r.query, namebuf_, [&](std::string_view pair, std::string_view name) {
      if (pair.empty() || ctx_.edits.drops_param(name)) return;
      if (!qbuf_.empty()) qbuf_ += '&';
      qbuf_ += pair;
    });
    if (const policy::Transform* t = ctx_.edits.transform)
      for (const auto& [k, v] : t->query.set) {
        if (!qbuf_.empty()) qbuf_ += '&';
        uri::append_query_component(qbuf_, k);
        qbuf_ += '=';
        uri::append_query_component(qbuf_, v);
      }
    query = qbuf_;
  }
  if (!query.empty()) {
    head += '?';
    head += query;
  }
  head += " HTTP/1.1\r\n";
  header(head, "host", route.rewrite.host ? std::string_view(*route.rewrite.host) : r.host);
  std::string_view in_xff, in_proto, in_host, in_forwarded, via;
  for (const auto& f : req) {
    const auto name = sv(f.name_string());
    switch (f.name()) {
    case http::field::host:
    case http::field::content_length:
    case http::field::expect:
    case http::field::max_forwards:
      continue;
    case http::field::forwarded:
      in_forwarded = sv(f.value());
      continue;
    case http::field::via:
      via = sv(f.value());
      continue;
    case http::field::unknown:
      // X-Forwarded-* and X-Request-Id are replaced by ours (see build_forwarding).
      if (iequals(name, "x-request-id")) continue;
      if (iequals(name, "x-forwarded-for")) {
        in_xff = sv(f.value());
        continue;
      }
      if (iequals(name, "x-forwarded-proto")) {
        in_proto = sv(f.value());
        continue;
      }
      if (iequals(name, "x-forwarded-host")) {
        in_host = sv(f.value());
        continue;
      }
      break;
    default:
      break;
    }
    if (hop_by_hop(f.name(), name) || r.conn.lists(name)) continue;
    if (ctx_.edits.drops(name)) continue;
    if (ctx_.edits.transform)
      if (const std::string* to = policy::renamed(ctx_.edits.transform->request, name)) {
        header(head, *to, sv(f.value()));
        continue;
      }
    if (f.name() == http::field::cookie && !ctx_.edits.drop_cookies.empty()) {
      const std::size_t mark = head.size();
      head += "cookie: ";
      const std::size_t start = head.size();
      text::append_cookies_without(head, sv(f.value()), ctx_.edits.drop_cookies);
      if (head.size() == start)
        head.resize(mark); // nothing left
      else
        head += "\r\n";
      continue;
    }
    header(head, name, sv(f.value()));
  }
  // The gateway's own headers (consumer, claims), unless a headers policy, which runs later,
  // removes or replaces them.
  for (const auto& [k, v] : ctx_.edits.set)
    if (!ctx_.edits.transform || !policy::replaces(ctx_.edits.transform->request, k))
      header(head, k, v);
  if (ctx_.edits.transform) append_ops(head, ctx_.edits.transform->request);
  Forwarding& fwd = fwd_;
  build_forwarding(ForwardInput{peer_ip_, peer_trusted_, "http", r.host, in_xff, in_proto, in_host,
                                in_forwarded},
                   fwd);
  header(head, "x-forwarded-for", fwd.x_forwarded_for);
  header(head, "x-forwarded-proto", fwd.x_forwarded_proto);
  header(head, "x-forwarded-host", fwd.x_forwarded_host);
  header(head, "forwarded", fwd.forwarded);
  header(head, "x-request-id", r.request_id);
  head += "via: ";
  if (!via.empty()) {
    head += via;
    head += ", ";
  }
  head += r.version == 10 ? "1.0 gw\r\n" : "1.1 gw\r\n";
  if (r.max_forwards) {
    head += "max-forwards: ";
    append_number(head, *r.max_forwards - 1);
    head += "\r\n";
  }
  if (r.body == BodyKind::length) {
    head += "content-length: ";
    append_number(head, r.content_length);
    head += "\r\n";
  } else if (r.body == BodyKind::chunked) {
    head += "transfer-encoding: chunked\r\n";
  }
  head += "\r\n";

  // Attempts: retry only where it is safe (see README): a connect failure (nothing was sent), or
  // a reused pooled connection that fails before any response byte, for idempotent requests
  // without a body (a streamed body cannot be sent twice).
  upstream::Excluded tried;
  std::unique_ptr<PooledConnection> conn;
  std::shared_ptr<EndpointRuntime> epr; // held across awaits: a reload may drop it from the table
  std::optional<http::response_parser<http::buffer_body>> rp;
  std::size_t resp_head_len = 0;
  bool body_sent = false;
  std::uint64_t hash = 0;
  if (up.balance == model::Balance::hash) {
    std::string_view key;
    if (up.hash_on == model::HashOn::client_ip)
      key = r.client;
    else if (up.hash_on == model::HashOn::header) {
      auto it = req.find(boost::core::string_view(up.hash_key.data(), up.hash_key.size()));
      if (it != req.end()) key = sv(it->value());
    } else if (up.hash_on == model::HashOn::cookie) {
      auto it = req.find(http::field::cookie);
      if (it != req.end()) {
        if (auto v = text::cookie_value(sv(it->value()), up.hash_key)) key = *v;
      }
    }
    hash = upstream::hash_key(key);
  }

  const std::uint32_t max_attempts = 1 + route.retries;
  std::optional<Failure> last;
  const auto upstream_start = Clock::now();
  for (std::uint32_t attempt = 0; attempt < max_attempts; ++attempt) {
    if (Clock::now() >= route_deadline) {
      last = Failure{ErrorKind::upstream_timeout, "the route timeout expired"};
      break;
    }
    auto picked = ur.balancer->pick(ur.loads, hash, tried);
    if (!picked)
      co_return Failure{ErrorKind::no_healthy_upstream,
                        "no usable endpoint in upstream \"" + up.name + "\""};
    tried.add(*picked);
    epr = ur.endpoints[*picked];
    EndpointRuntime& ep = *epr;
    ++ep.requests;
    if (attempt > 0) ++ur.stats->retries;
    r.endpoint = ep.address;
    ++r.attempts;
    auto try_deadline =
        route.per_try_timeout_ms
            ? std::min(route_deadline,
                       Clock::now() + std::chrono::milliseconds(route.per_try_timeout_ms))
            : route_deadline;

    // A pooled connection, the most recently used first. One idle for more than a second is
    // checked with a peek (EOF or stray bytes mean it is dead); a fresher one is trusted, which
    // saves a system call per request under load, and the reused-connection retry covers the
    // rare race with an upstream closing it.
    bool reused = false;
    conn.reset();
    while (!ep.idle.empty()) {
      auto c = std::move(ep.idle.back());
      ep.idle.pop_back();
      if (Clock::now() - c->idle_since > 1s) {
        char probe;
        const ssize_t n = ::recv(c->socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) continue;
      }
      conn = std::move(c);
      reused = true;
      break;
    }
    if (!conn) {
      conn = std::make_unique<PooledConnection>(w_.ioc);
      handle_->up = &conn->socket;
      arm(std::min(try_deadline, Clock::now() + std::chrono::milliseconds(up.connect_timeout_ms)));
      auto [ec] = co_await conn->socket.async_connect(ep.addr, kTuple);
      if (ec) {
        const bool timed_out = this->timed_out();
        ++ep.failures;
        ++(timed_out ? ur.stats->timeouts : ur.stats->connect_failures);
        last = Failure{timed_out ? ErrorKind::upstream_timeout : ErrorKind::upstream_connect_failed,
                       "connecting to " + ep.address + ": " +
                           (timed_out ? std::string("timed out") : ec.message())};
        if (timed_out && Clock::now() >= route_deadline) break;
        continue; // nothing was sent: safe to retry for any method
      }
      error_code ignored;
      conn->socket.set_option(tcp::no_delay(true), ignored);
    }
    handle_->up = &conn->socket;
    ++ep.load.active;
    struct ActiveGuard {
      std::shared_ptr<EndpointRuntime> e;
      ~ActiveGuard() { --e->load.active; }
    } guard{epr};

    // 100-continue: we answer it ourselves once we are ready to take the body.
    if (r.expect_continue && !body_sent) {
      static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
      if (co_await write_all(down_, net::buffer(k100.data(), k100.size()),
                             Clock::now() + opts.idle_timeout))
        co_return Failure{ErrorKind::bad_request, "client went away"};
      r.expect_continue = false;
    }

    // Send the head, and the body.
    std::optional<Failure> send_failure;
    const bool can_retry_send = r.body == BodyKind::none;
    if (r.body == BodyKind::none) {
      if (auto ec = co_await write_all(conn->socket, net::buffer(head), try_deadline)) {
        send_failure = Failure{ec == net::error::timed_out ? ErrorKind::upstream_timeout
                                                           : ErrorKind::upstream_protocol_error,
                               "sending to " + ep.address + ": " + ec.message()};
      }
    } else if (r.body == BodyKind::length) {
      body_sent = true;
      std::uint64_t left = r.content_length;
      // First what is already buffered, together with the head in one write.
      const std::size_t have =
          static_cast<std::size_t>(std::min<std::uint64_t>(left, dbuf_.size()));
      std::array<net::const_buffer, 2> first{net::buffer(head),
                                             net::buffer(dbuf_.data().data(), have)};
      if (auto ec = co_await write_all(conn->socket, first, try_deadline)) {
        send_failure = Failure{ErrorKind::upstream_protocol_error,
                               "sending to " + ep.address + ": " + ec.message()};
      } else {
        dbuf_.consume(have);
        left -= have;
        r.bytes_in += have;
        while (left > 0) {
          arm(std::min(route_deadline, Clock::now() + opts.idle_timeout));
          auto [rec, n] = co_await down_.async_read_some(
              net::buffer(body_.data(),
                          static_cast<std::size_t>(std::min<std::uint64_t>(left, body_.size()))),
              kTuple);
          if (rec)
            co_return Failure{timed_out() ? ErrorKind::request_timeout : ErrorKind::bad_request,
                              "reading the request body: " + rec.message()};
          left -= n;
          r.bytes_in += n;
          if (auto wec =
                  co_await write_all(conn->socket, net::buffer(body_.data(), n), try_deadline)) {
            send_failure = Failure{ErrorKind::upstream_protocol_error,
                                   "sending to " + ep.address + ": " + wec.message()};
            break;
          }
        }
        if (send_failure) {
          // Drain nothing more: the connection to the client closes after the reply.
          r.keep_alive = false;
        }
      }
    } else { // chunked: decode with the parser, re-frame to the upstream
      body_sent = true;
      auto& p = *r.parser;
      if (auto ec = co_await write_all(conn->socket, net::buffer(head), try_deadline)) {
        send_failure = Failure{ErrorKind::upstream_protocol_error,
                               "sending to " + ep.address + ": " + ec.message()};
      }
      std::uint64_t total = 0;
      std::size_t fields_before = 0;
      for (auto it = req.begin(); it != req.end(); ++it)
        ++fields_before;
      while (!send_failure && !p.is_done()) {
        p.get().body().data = body_.data();
        p.get().body().size = body_.size();
        p.get().body().more = true;
        error_code ec;
        std::size_t used = 0;
        if (dbuf_.size() > 0) {
          used = p.put(dbuf_.data(), ec);
          dbuf_.consume(used);
          r.bytes_in += used;
          // need_buffer: our buffer is full; need_more: an element is incomplete. Neither is an
          // error.
          if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
          if (ec) {
            r.keep_alive = false;
            co_return Failure{ErrorKind::bad_request, "malformed chunked body: " + ec.message()};
          }
        }
        const std::size_t got = body_.size() - p.get().body().size;
        // Read from the client only when the parser can make no progress with what it has.
        if (got == 0 && used == 0 && !p.is_done()) {
          arm(std::min(route_deadline, Clock::now() + opts.idle_timeout));
          auto [rec, n] = co_await down_.async_read_some(dbuf_.prepare(16384), kTuple);
          if (rec) {
            r.keep_alive = false;
            co_return Failure{timed_out() ? ErrorKind::request_timeout : ErrorKind::bad_request,
                              "reading the request body: " + rec.message()};
          }
          dbuf_.commit(n);
          continue;
        }
        if (got > 0) {
          total += got;
          if (route.max_body && total > route.max_body) {
            r.keep_alive = false;
            co_return Failure{ErrorKind::body_too_large, "the request body is larger than " +
                                                             std::to_string(route.max_body) +
                                                             " bytes"};
          }
          chunk_line_.clear();
          append_hex(chunk_line_, got);
          chunk_line_ += "\r\n";
          std::array<net::const_buffer, 3> chunk{
              net::buffer(chunk_line_), net::buffer(body_.data(), got), net::buffer("\r\n", 2)};
          if (auto wec = co_await write_all(conn->socket, chunk, try_deadline))
            send_failure = Failure{ErrorKind::upstream_protocol_error,
                                   "sending to " + ep.address + ": " + wec.message()};
        }
      }
      if (!send_failure) {
        std::string last_chunk = "0\r\n";
        std::size_t i = 0;
        for (const auto& f : req) {
          if (i++ < fields_before) continue; // trailers come after the head's fields
          const auto name = sv(f.name_string());
          if (hop_by_hop(f.name(), name) || f.name() == http::field::content_length ||
              f.name() == http::field::host)
            continue;
          header(last_chunk, name, sv(f.value()));
        }
        last_chunk += "\r\n";
        if (auto wec = co_await write_all(conn->socket, net::buffer(last_chunk), try_deadline))
          send_failure = Failure{ErrorKind::upstream_protocol_error,
                                 "sending to " + ep.address + ": " + wec.message()};
      }
    }
    if (send_failure) {
      last = send_failure;
      conn.reset();
      if (reused && can_retry_send && idempotent) continue;
      break;
    }

    // Read the response head; 1xx interim responses are relayed (HTTP/1.1 clients) and skipped.
    for (;;) {
      arm(try_deadline);
      const HeadStatus hs = co_await read_head(conn->socket, conn->buf, opts.max_header_bytes,
                                               resp_head_len, *handle_);
      if (hs == HeadStatus::ok) {
        const std::string_view block(static_cast<const char*>(conn->buf.data().data()),
                                     resp_head_len);
        if (check_header_block(block) != BlockError::none) {
          last = Failure{ErrorKind::upstream_protocol_error,
                         ep.address + " sent a malformed response head"};
          break;
        }
        rp.emplace();
        rp->header_limit(static_cast<std::uint32_t>(opts.max_header_bytes + 1));
        rp->body_limit(std::numeric_limits<std::uint64_t>::max());
        if (r.head) rp->skip(true);
        error_code ec;
        rp->put(net::buffer(block.data(), block.size()), ec);
        if (ec || !rp->is_header_done()) {
          last = Failure{ErrorKind::upstream_protocol_error,
                         ep.address + " sent a malformed response: " +
                             (ec ? ec.message() : std::string("incomplete head"))};
          rp.reset();
          break;
        }
        conn->buf.consume(resp_head_len);
        const unsigned code = rp->get().result_int();
        if (code >= 100 && code < 200) {
          if (code == 101) {
            last = Failure{ErrorKind::upstream_protocol_error,
                           ep.address + " switched protocols, which gw does not relay"};
            rp.reset();
            break;
          }
          if (r.version >= 11 && code != 100) {
            // 103 Early Hints and friends go to the client as they are.
            out_.assign(block.data(), block.size());
            if (co_await write_all(down_, net::buffer(out_), Clock::now() + opts.idle_timeout))
              co_return Failure{ErrorKind::bad_request, "client went away"};
          }
          rp.reset();
          continue;
        }
        break;
      }
      // No usable head.
      if (hs == HeadStatus::timeout) {
        last = Failure{ErrorKind::upstream_timeout, ep.address + " did not answer in time"};
      } else if (hs == HeadStatus::too_large) {
        last = Failure{ErrorKind::upstream_protocol_error,
                       ep.address + " sent a response head larger than " +
                           std::to_string(opts.max_header_bytes) + " bytes"};
      } else {
        last = Failure{ErrorKind::upstream_protocol_error,
                       ep.address + " closed the connection or sent garbage before a response"};
      }
      break;
    }
    if (rp) {
      last.reset();
      break;
    }
    const bool nothing_received = conn->buf.size() == 0;
    conn.reset();
    ++ep.failures;
    if (last)
      ++(last->kind == ErrorKind::upstream_timeout ? ur.stats->timeouts
                                                   : ur.stats->protocol_errors);
    // Only a reused connection that failed before any response byte may be retried, and only
    // when the request is idempotent and has no body.
    if (reused && nothing_received && idempotent && can_retry_send && last &&
        last->kind == ErrorKind::upstream_protocol_error)
      continue;
    break;
  }
  if (!rp)
    co_return last ? last : Failure{ErrorKind::upstream_connect_failed, "no attempt was made"};
  r.upstream_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - upstream_start).count();

  // The response head to the client.
  auto& res = rp->get();
  const unsigned code = res.result_int();
  r.upstream_status = code;
  r.status = code;
  int cl_count = 0, te_count = 0;
  std::string_view cl_value, te_value, rvia;
  ConnectionTokens rconn;
  std::size_t fields_before = 0;
  for (const auto& f : res) {
    ++fields_before;
    switch (f.name()) {
    case http::field::content_length:
      ++cl_count;
      cl_value = sv(f.value());
      break;
    case http::field::transfer_encoding:
      ++te_count;
      te_value = sv(f.value());
      break;
    case http::field::connection:
      rconn.add(sv(f.value()));
      break;
    default:
      break;
    }
  }
  const bool no_body = r.head || code == 204 || code == 304;
  BodyKind rbody = BodyKind::none;
  std::uint64_t rlength = 0;
  if (cl_count > 1)
    co_return Failure{
        ErrorKind::upstream_protocol_error,
        r.endpoint.empty() ? "" : std::string(r.endpoint) + " sent more than one Content-Length"};
  if (te_count > 0) {
    if (!is_only_chunked(te_value))
      co_return Failure{ErrorKind::upstream_protocol_error,
                        std::string(r.endpoint) + " used a transfer coding other than chunked"};
    if (!no_body) rbody = BodyKind::chunked;
  } else if (cl_count == 1) {
    auto n = parse_content_length(cl_value);
    if (!n)
      co_return Failure{ErrorKind::upstream_protocol_error,
                        std::string(r.endpoint) + " sent a malformed Content-Length"};
    rlength = *n;
    if (!no_body && rlength > 0) rbody = BodyKind::length;
  } else if (!no_body) {
    rbody = BodyKind::until_close;
  }
  // How the client gets the body: chunked stays chunked for HTTP/1.1 clients; a close-delimited
  // body becomes chunked for them too, so the connection can stay open.
  const bool client11 = r.version >= 11;
  const bool to_chunked =
      client11 && (rbody == BodyKind::chunked || rbody == BodyKind::until_close);
  if (!client11 && (rbody == BodyKind::chunked || rbody == BodyKind::until_close))
    r.keep_alive = false;
  if (w_.draining) r.keep_alive = false;

  out_.clear();
  out_ += "HTTP/1.1 ";
  append_number(out_, code);
  out_ += ' ';
  out_ += sv(res.reason());
  out_ += "\r\n";
  bool has_request_id = false;
  for (const auto& f : res) {
    const auto name = sv(f.name_string());
    switch (f.name()) {
    case http::field::content_length:
      if (no_body && r.head) break; // HEAD: the length of what GET would send, kept as is
      continue;
    case http::field::via:
      rvia = sv(f.value());
      continue;
    case http::field::unknown:
      if (iequals(name, "x-request-id")) has_request_id = true;
      break;
    default:
      break;
    }
    if (f.name() != http::field::content_length &&
        (hop_by_hop(f.name(), name) || rconn.lists(name)))
      continue;
    if (const policy::Transform* t = ctx_.edits.transform) {
      if (policy::replaces(t->response, name)) continue;
      if (const std::string* to = policy::renamed(t->response, name)) {
        header(out_, *to, sv(f.value()));
        continue;
      }
    }
    header(out_, name, sv(f.value()));
  }
  if (ctx_.edits.transform) append_ops(out_, ctx_.edits.transform->response);
  append_fields(out_, ctx_.edits.response_add); // CORS, RateLimit
  out_ += "via: ";
  if (!rvia.empty()) {
    out_ += rvia;
    out_ += ", ";
  }
  out_ += res.version() == 10 ? "1.0 gw\r\n" : "1.1 gw\r\n";
  if (!has_request_id) header(out_, "x-request-id", r.request_id);
  if (rbody == BodyKind::length ||
      (!r.head && rbody == BodyKind::none && code != 204 && code != 304)) {
    out_ += "content-length: ";
    append_number(out_, rlength);
    out_ += "\r\n";
  } else if (to_chunked) {
    out_ += "transfer-encoding: chunked\r\n";
  }
  if (!r.keep_alive)
    out_ += "connection: close\r\n";
  else if (!client11)
    out_ += "connection: keep-alive\r\n";
  out_ += "\r\n";

  // The body. The upstream connection goes back to the pool only after a clean exchange.
  const bool upstream_reusable = rp->keep_alive() && !rconn.close && res.version() >= 11;
  const auto idle_deadline = [&] {
    return Clock::now() + std::chrono::milliseconds(route.timeout_ms);
  };
  r.response_started = true;
  if (rbody == BodyKind::none) {
    if (auto ec = co_await write_all(down_, net::buffer(out_), Clock::now() + opts.idle_timeout)) {
      r.keep_alive = false;
      co_return Failure{ErrorKind::bad_request, "writing to the client: " + ec.message()};
    }
    r.bytes_out += out_.size();
  } else if (rbody == BodyKind::length) {
    std::uint64_t left = rlength;
    const std::size_t have =
        static_cast<std::size_t>(std::min<std::uint64_t>(left, conn->buf.size()));
    std::array<net::const_buffer, 2> first{net::buffer(out_),
                                           net::buffer(conn->buf.data().data(), have)};
    if (auto ec = co_await write_all(down_, first, Clock::now() + opts.idle_timeout)) {
      r.keep_alive = false;
      co_return Failure{ErrorKind::bad_request, "writing to the client: " + ec.message()};
    }
    conn->buf.consume(have);
    left -= have;
    r.bytes_out += out_.size() + have;
    while (left > 0) {
      arm(idle_deadline());
      auto [ec, n] = co_await conn->socket.async_read_some(
          net::buffer(body_.data(),
                      static_cast<std::size_t>(std::min<std::uint64_t>(left, body_.size()))),
          kTuple);
      if (ec) {
        r.keep_alive = false;
        co_return Failure{ErrorKind::upstream_protocol_error,
                          std::string(r.endpoint) + " ended the body early: " + ec.message()};
      }
      left -= n;
      if (auto wec = co_await write_all(down_, net::buffer(body_.data(), n),
                                        Clock::now() + opts.idle_timeout)) {
        r.keep_alive = false;
        co_return Failure{ErrorKind::bad_request, "writing to the client: " + wec.message()};
      }
      r.bytes_out += n;
    }
  } else { // chunked or until close: decode with the parser
    if (auto ec = co_await write_all(down_, net::buffer(out_), Clock::now() + opts.idle_timeout)) {
      r.keep_alive = false;
      co_return Failure{ErrorKind::bad_request, "writing to the client: " + ec.message()};
    }
    r.bytes_out += out_.size();
    auto& p = *rp;
    bool eof = false;
    while (!p.is_done()) {
      p.get().body().data = body_.data();
      p.get().body().size = body_.size();
      p.get().body().more = true;
      error_code ec;
      std::size_t used = 0;
      if (conn->buf.size() > 0) {
        used = p.put(conn->buf.data(), ec);
        conn->buf.consume(used);
        // need_buffer: our buffer is full; need_more: an element is incomplete. Neither is an
        // error.
        if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
      } else if (eof) {
        p.put_eof(ec);
        used = 1; // progress: the parser has seen the end
      }
      if (ec) {
        r.keep_alive = false;
        co_return Failure{ErrorKind::upstream_protocol_error,
                          std::string(r.endpoint) + " sent a malformed body: " + ec.message()};
      }
      const std::size_t got = body_.size() - p.get().body().size;
      if (got == 0 && used == 0 && !p.is_done()) {
        if (eof) {
          r.keep_alive = false;
          co_return Failure{ErrorKind::upstream_protocol_error,
                            std::string(r.endpoint) + " ended the body early"};
        }
        arm(idle_deadline());
        auto [rec, n] = co_await conn->socket.async_read_some(conn->buf.prepare(16384), kTuple);
        if (rec == net::error::eof) {
          eof = true;
          continue;
        }
        if (rec) {
          r.keep_alive = false;
          co_return Failure{ErrorKind::upstream_protocol_error,
                            std::string(r.endpoint) + " failed during the body: " + rec.message()};
        }
        conn->buf.commit(n);
        continue;
      }
      if (got > 0) {
        if (to_chunked) {
          chunk_line_.clear();
          append_hex(chunk_line_, got);
          chunk_line_ += "\r\n";
          std::array<net::const_buffer, 3> chunk{
              net::buffer(chunk_line_), net::buffer(body_.data(), got), net::buffer("\r\n", 2)};
          if (auto wec = co_await write_all(down_, chunk, Clock::now() + opts.idle_timeout)) {
            r.keep_alive = false;
            co_return Failure{ErrorKind::bad_request, "writing to the client: " + wec.message()};
          }
          r.bytes_out += chunk_line_.size() + got + 2;
        } else {
          if (auto wec = co_await write_all(down_, net::buffer(body_.data(), got),
                                            Clock::now() + opts.idle_timeout)) {
            r.keep_alive = false;
            co_return Failure{ErrorKind::bad_request, "writing to the client: " + wec.message()};
          }
          r.bytes_out += got;
        }
      }
    }
    if (to_chunked) {
      std::string last_chunk = "0\r\n";
      std::size_t i = 0;
      for (const auto& f : res) {
        if (i++ < fields_before) continue;
        const auto name = sv(f.name_string());
        if (hop_by_hop(f.name(), name) || f.name() == http::field::content_length) continue;
        header(last_chunk, name, sv(f.value()));
      }
      last_chunk += "\r\n";
      if (auto wec = co_await write_all(down_, net::buffer(last_chunk),
                                        Clock::now() + opts.idle_timeout)) {
        r.keep_alive = false;
        co_return Failure{ErrorKind::bad_request, "writing to the client: " + wec.message()};
      }
      r.bytes_out += last_chunk.size();
    }
    if (rbody == BodyKind::until_close) conn.reset(); // it is closing
  }
  if (conn && upstream_reusable && conn->buf.size() == 0 &&
      epr->state != runtime::EndpointState::maint &&
      epr->idle.size() < opts.max_idle_per_endpoint) {
    conn->idle_since = Clock::now();
    epr->idle.push_back(std::move(conn));
  }
  handle_->up = nullptr;
  co_return std::nullopt;
}

} // namespace

net::awaitable<void> serve_connection(WorkerState& w, tcp::socket socket) {
  Session s(w, std::move(socket));
  co_await s.run();
}

} // namespace gw::proxy
