// The upstream exchange: the head, the attempts (select an endpoint, connect or take a pooled
// connection, send, read the response head), the response filters, the response, and the body
// relay that both directions use.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gw/core/text.hpp"
#include "session.hpp"

namespace gw::proxy {

using namespace gw::wire;
using namespace std::chrono_literals;
using upstream::EndpointRuntime;
using upstream::PooledConnection;

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
  build_upstream_head(
      UpstreamRequest{r.head, r.msg(), route, r.match, r.filters.edits, peer_ip_, peer_trusted_},
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
  // A pooled connection needs no waiting; only a new one is a coroutine.
  x.conn = upstream::checkout(*x.ep, Clock::now());
  x.reused = x.conn != nullptr;
  if (!x.reused)
    if (auto e = co_await connect(r, x, try_deadline)) co_return e;
  handle_->up = &x.conn->socket;
  ++x.ep->load.active;
  struct ActiveGuard {
    std::shared_ptr<EndpointRuntime> e;
    ~ActiveGuard() { --e->load.active; }
  } guard{x.ep};

  // 100-continue: we answer it ourselves once we are ready to take the body.
  if (r.head.expect_continue && !x.body_sent) {
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    if (co_await write_all(down_, net::buffer(k100.data(), k100.size()),
                           Clock::now() + w_.limits.idle_timeout))
      co_return client_error(ErrorKind::bad_request, "client went away");
    r.head.expect_continue = false;
  }
  // Only a reused connection that fails before any response byte may be tried again, and only
  // for an idempotent request without a body (a streamed body cannot be sent twice).
  const bool safe_again = x.reused && r.head.body == BodyKind::none && r.head.idempotent();
  if (r.head.body == BodyKind::none) { // the common case: the head alone, no relay
    if (auto ec = co_await write_all(x.conn->socket, net::buffer(uphead_), try_deadline)) {
      x.conn.reset();
      co_return upstream_error(ec == net::error::timed_out ? ErrorKind::upstream_timeout
                                                           : ErrorKind::upstream_protocol_error,
                               "sending to " + x.ep->address + ": " + ec.message(), safe_again);
    }
  } else if (auto e = co_await send_request(r, x, try_deadline, route_deadline)) {
    co_return e;
  }
  co_return co_await read_response_head(r, x, try_deadline, safe_again);
}

/// A new connection to the endpoint.
net::awaitable<std::optional<ProxyError>> Session::connect(RequestContext& r, Exchange& x,
                                                           Clock::time_point try_deadline) {
  EndpointRuntime& ep = *x.ep;
  const model::Upstream& up = r.snap->config().upstreams[r.route->upstream];
  {
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
  co_return std::nullopt;
}

/// The upstream head and the request body, through the relay (the head goes out with the first
/// piece of the body, or before waiting for it).
net::awaitable<std::optional<ProxyError>> Session::send_request(RequestContext& r, Exchange& x,
                                                                Clock::time_point try_deadline,
                                                                Clock::time_point route_deadline) {
  const Limits& lim = w_.limits;
  EndpointRuntime& ep = *x.ep;
  x.body_sent = true;
  {
    BodyReader<true> rd(r.head.body, r.head.content_length, *r.parser, scratch_, r.route->max_body);
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
                                 "sending to " + ep.address + ": " + p.ec.message());
      case Pumped::What::too_large:
        r.head.keep_alive = false;
        co_return client_error(ErrorKind::body_too_large, "the request body is larger than " +
                                                              std::to_string(r.route->max_body) +
                                                              " bytes");
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

  co_return std::nullopt;
}

/// The response head; 1xx interim responses are relayed (HTTP/1.1 clients) and skipped.
net::awaitable<std::optional<ProxyError>>
Session::read_response_head(RequestContext& r, Exchange& x, Clock::time_point try_deadline,
                            bool safe_again) {
  const Limits& lim = w_.limits;
  EndpointRuntime& ep = *x.ep;
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
  const auto& res = x.parser->get();
  r.out.upstream_status = res.result_int();
  const policy::BodyMode mode = r.chain->response_body();
  auto plan = plan_response(res, x.parser->keep_alive(), r.head, r.head.keep_alive && !w_.draining,
                            mode == policy::BodyMode::stream);
  if (!plan)
    co_return upstream_error(ErrorKind::upstream_protocol_error,
                             std::string(r.out.endpoint) + " " + plan.error());

  // on_response, in reverse order: a filter may change the head's fields, or answer instead (the
  // upstream's answer is dropped, and so is its connection: its body was not read).
  const ResponseHeadView view(res);
  r.filters.response = &view;
  if (auto lr = response_filters(r, [&](const policy::Filter& f, policy::FilterContext& ctx) {
        return f.on_response(ctx);
      })) {
    x.conn.reset();
    handle_->up = nullptr;
    co_await reply(r, *lr, false);
    co_return std::nullopt;
  }
  r.out.status = plan->status;
  r.head.keep_alive = plan->keep_alive;
  // Not a conditional expression: GCC 12 mishandles co_await inside one.
  std::optional<ProxyError> e;
  if (mode == policy::BodyMode::whole && plan->body != BodyKind::none)
    e = co_await send_whole(r, x, *plan);
  else
    e = co_await send_streamed(r, x, *plan, mode == policy::BodyMode::stream);
  r.filters.response = nullptr; // it views the exchange, which ends here
  if (e) {
    r.head.keep_alive = false;
    x.conn.reset();
    co_return e;
  }
  // The upstream connection goes back to the pool only after a clean exchange.
  if (x.conn && plan->body != BodyKind::until_close && plan->upstream_reusable)
    upstream::checkin(*x.ep, std::move(x.conn), w_.limits.max_idle_per_endpoint, Clock::now());
  x.conn.reset();
  co_return std::nullopt;
}

template <class Hook>
std::optional<policy::LocalReply> Session::response_filters(RequestContext& r, Hook hook) {
  if (!r.filters_ran) return std::nullopt;
  policy::FilterContext& ctx = r.filters;
  const auto filters = r.chain->filters();
  for (std::size_t i = filters.size(); i-- > 0;) {
    ctx.position = i;
    policy::Verdict v = hook(*filters[i], ctx);
    if (v.type() != policy::Verdict::Type::reply) continue;
    policy::LocalReply lr = std::move(v.reply());
    lr.headers.insert(lr.headers.end(), ctx.edits.response_add.begin(),
                      ctx.edits.response_add.end());
    if (!lr.detail.empty()) r.out.error_detail = lr.detail;
    return lr;
  }
  return std::nullopt;
}

/// The head and the body as they stream (through filters that asked for the pieces).
net::awaitable<std::optional<ProxyError>>
Session::send_streamed(RequestContext& r, Exchange& x, const ResponsePlan& plan, bool tap) {
  BodyReader<false> rd(plan.body, plan.length, *x.parser, scratch_);
  BodyWriter wr(plan.to_chunked);
  const Deadlines dl{std::chrono::milliseconds(r.route->timeout_ms), w_.limits.idle_timeout};
  out_.clear();
  build_response_head(x.parser->get(), plan, r.head, r.filters.edits, out_);
  r.out.response_started = true;
  // A response without a body (HEAD, 204, 304, an empty one) has nothing for stream filters,
  // and nothing they might return at its end may follow its head: it would be read as the
  // start of the next response.
  tap = tap && plan.body != BodyKind::none;
  // The common case: a small body that came with the head goes out with it in one write, without
  // the relay (no framing to change, nothing left to read).
  if (!tap && !plan.to_chunked &&
      (plan.body == BodyKind::none ||
       (plan.body == BodyKind::length && plan.length <= x.conn->buf.size()))) {
    const auto n = static_cast<std::size_t>(plan.body == BodyKind::none ? 0 : plan.length);
    const std::array<net::const_buffer, 2> bufs{net::buffer(out_),
                                                net::buffer(x.conn->buf.data().data(), n)};
    if (auto ec = co_await write_all(down_, bufs, Clock::now() + w_.limits.idle_timeout))
      co_return client_error(ErrorKind::bad_request, "writing to the client: " + ec.message());
    x.conn->buf.consume(n);
    r.out.bytes_out += out_.size() + n;
    co_return std::nullopt;
  }
  const Pumped p = co_await pump(rd, x.conn->socket, x.conn->buf, dl, &down_, wr, out_,
                                 r.out.bytes_out, nullptr, tap ? &r : nullptr);
  if (p.ok()) co_return std::nullopt;
  co_return body_error(r, plan, p);
}

/// For filters that want the whole body: read it (bounded by the route's max_body), let them
/// change it or answer instead, then send it with its new length.
net::awaitable<std::optional<ProxyError>> Session::send_whole(RequestContext& r, Exchange& x,
                                                              ResponsePlan plan) {
  BodyReader<false> rd(plan.body, plan.length, *x.parser, scratch_,
                       r.route->max_body ? r.route->max_body : kMaxWholeBody);
  BodyWriter unused(false);
  const Deadlines dl{std::chrono::milliseconds(r.route->timeout_ms), w_.limits.idle_timeout};
  std::string& body = tapbuf_;
  body.clear();
  std::uint64_t none = 0;
  const Pumped p =
      co_await pump(rd, x.conn->socket, x.conn->buf, dl, nullptr, unused, {}, none, &body);
  if (p.what == Pumped::What::too_large)
    co_return upstream_error(ErrorKind::upstream_protocol_error,
                             std::string(r.out.endpoint) +
                                 " sent a body larger than the route's max_body");
  if (!p.ok()) co_return body_error(r, plan, p);
  std::string end;
  if (auto lr = response_filters(r, [&](const policy::Filter& f, policy::FilterContext& ctx) {
        const policy::BodyMode m = f.response_body();
        if (m == policy::BodyMode::none) return policy::Verdict::proceed();
        policy::Verdict v = f.on_response_body(ctx, body, m == policy::BodyMode::whole);
        if (m == policy::BodyMode::stream && v.type() != policy::Verdict::Type::reply) {
          // A stream filter on this route gets what it gets streaming: the body (here in one
          // piece), then the end, whose result is appended.
          end.clear();
          v = f.on_response_body(ctx, end, true);
          body += end;
        }
        return v;
      })) {
    co_await reply(r, *lr, false);
    co_return std::nullopt;
  }
  plan.body = BodyKind::length;
  plan.length = body.size();
  plan.length_known = true;
  plan.to_chunked = false;
  out_.clear();
  build_response_head(x.parser->get(), plan, r.head, r.filters.edits, out_);
  r.out.response_started = true;
  const std::array<net::const_buffer, 2> bufs{net::buffer(out_), net::buffer(body)};
  if (auto ec = co_await write_all(down_, bufs, Clock::now() + w_.limits.idle_timeout))
    co_return client_error(ErrorKind::bad_request, "writing to the client: " + ec.message());
  r.out.bytes_out += out_.size() + body.size();
  co_return std::nullopt;
}

ProxyError Session::body_error(const RequestContext& r, const ResponsePlan& plan, const Pumped& p) {
  const std::string endpoint(r.out.endpoint);
  switch (p.what) {
  case Pumped::What::write_failed:
    return client_error(ErrorKind::bad_request, "writing to the client: " + p.ec.message());
  case Pumped::What::malformed:
    return upstream_error(ErrorKind::upstream_protocol_error,
                          endpoint + " sent a malformed body: " + p.ec.message());
  case Pumped::What::early_end:
    return upstream_error(ErrorKind::upstream_protocol_error, endpoint + " ended the body early");
  case Pumped::What::filter_failed:
    // The gateway's own failure: not the upstream's, nor retryable; handle_one closes the
    // connection, since the head is out.
    return ProxyError{ErrorKind::internal, ProxyError::Source::gateway, false, r.out.error_detail};
  default:
    return upstream_error(ErrorKind::upstream_protocol_error,
                          plan.body == BodyKind::length
                              ? endpoint + " ended the body early: " + p.ec.message()
                              : endpoint + " failed during the body: " + p.ec.message());
  }
}

// ---- the relay, both directions

template <bool isRequest>
net::awaitable<Pumped>
Session::pump(BodyReader<isRequest>& rd, tcp::socket& from, beast::flat_buffer& in,
              const Deadlines& dl, tcp::socket* to, BodyWriter& wr, std::string_view prefix,
              std::uint64_t& written, std::string* sink, RequestContext* tap) {
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

} // namespace gw::proxy
