// Private: the downstream session and what its phases share. One Session per client
// connection: session.cpp holds the connection loop and the driver of a request's phases,
// phases.cpp routing, the filters and the log, exchange.cpp the upstream exchange and the body
// relay. Worker-local: a session runs on its worker's io_context only.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "body.hpp"
#include "gw/policy/filter.hpp"
#include "gw/policy/route_chain.hpp"
#include "gw/redis/client.hpp"
#include "gw/router/route_table.hpp"
#include "gw/wire/local_reply.hpp"
#include "heads.hpp"
#include "worker_context.hpp"

namespace gw::proxy {

namespace beast = boost::beast;
using Clock = std::chrono::steady_clock;
using ErrorKind = wire::ErrorKind;
using error_code = boost::system::error_code;
inline constexpr auto kTuple = net::as_tuple(net::use_awaitable);

std::int64_t now_us();

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
                                     std::size_t& len, const SessionHandle& h);

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
  void for_each_header(
      const std::function<void(std::string_view, std::string_view)>& fn) const override {
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

inline ProxyError upstream_error(ErrorKind k, std::string detail, bool retryable = false) {
  return {k, ProxyError::Source::upstream, retryable, std::move(detail)};
}
inline ProxyError client_error(ErrorKind k, std::string detail) {
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
inline constexpr Clock::duration kNoLimit = std::chrono::hours(24 * 365);
/// The bound of a body read whole for filters when the route sets no max_body.
inline constexpr std::uint64_t kMaxWholeBody = 8 << 20;

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
      auto ip = wire::parse_ip(peer_ip_);
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
  /// Routing needs no I/O: what the gateway answers instead of forwarding, or nothing.
  std::optional<policy::LocalReply> route_request(RequestContext& r);
  net::awaitable<bool> request_filters(RequestContext& r);
  net::awaitable<std::optional<ProxyError>> forward(RequestContext& r);
  void log_request(RequestContext& r);

  // What the phases use.
  struct Exchange; // one upstream exchange: connection, endpoint, response parser
  net::awaitable<std::optional<ProxyError>> attempt(RequestContext& r, Exchange& x,
                                                    Clock::time_point try_deadline,
                                                    Clock::time_point route_deadline);
  net::awaitable<std::optional<ProxyError>> connect(RequestContext& r, Exchange& x,
                                                    Clock::time_point try_deadline);
  net::awaitable<std::optional<ProxyError>> send_request(RequestContext& r, Exchange& x,
                                                         Clock::time_point try_deadline,
                                                         Clock::time_point route_deadline);
  net::awaitable<std::optional<ProxyError>> read_response_head(RequestContext& r, Exchange& x,
                                                               Clock::time_point try_deadline,
                                                               bool safe_again);
  net::awaitable<std::optional<ProxyError>> respond(RequestContext& r, Exchange& x);
  /// Runs a response hook of the route's filters in reverse order; the first answer wins.
  template <class Hook>
  std::optional<policy::LocalReply> response_filters(RequestContext& r, Hook hook);
  net::awaitable<std::optional<ProxyError>> send_streamed(RequestContext& r, Exchange& x,
                                                          const ResponsePlan& plan, bool tap);
  net::awaitable<std::optional<ProxyError>> send_whole(RequestContext& r, Exchange& x,
                                                       ResponsePlan plan);
  static ProxyError body_error(const RequestContext& r, const ResponsePlan& plan, const Pumped& p);
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
  net::awaitable<Pumped> pump(BodyReader<isRequest>& rd, tcp::socket& from, beast::flat_buffer& in,
                              const Deadlines& dl, tcp::socket* to, BodyWriter& wr,
                              std::string_view prefix, std::uint64_t& written,
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

} // namespace gw::proxy
