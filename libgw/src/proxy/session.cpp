// The downstream session: the connection loop, and the driver of the phases each request goes
// through (the phases themselves are in phases.cpp and exchange.cpp).
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
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gw/core/text.hpp"
#include "session.hpp"

namespace gw::proxy {

using namespace gw::wire;
using namespace std::chrono_literals;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

namespace {

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

} // namespace

// ---- the driver

net::awaitable<bool> Session::handle_one() {
  RequestContext r(w_.current, fctx_); // pinned: a reload during this request does not change it
  LogGuard log{*this, r};
  if (!co_await read_request(r)) co_return false;
  if (auto local = route_request(r)) {
    co_await refuse(r, std::move(*local));
  } else if (r.chain->empty() || co_await request_filters(r)) {
    auto e = co_await forward(r);
    handle_->up = nullptr; // the exchange's connection is gone or pooled
    if (e) {
      if (upstream_failure(e->kind)) report_upstream_failure(r, *e);
      r.out.error_detail = std::move(e->detail);
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

net::awaitable<void> serve_connection(WorkerContext& w, tcp::socket socket) {
  Session s(w, std::move(socket));
  co_await s.run();
}

} // namespace gw::proxy
