// gw::upstream::HttpClient: Beast's response parser over Asio sockets, one coroutine per call.
//
// Deadline. One steady_timer per call, not one per operation: when it expires its handler closes
// the socket the call is using, which completes the operation in flight (connect, write or read)
// with operation_aborted, and the call reports a timeout. The handler may run after the call has
// ended (its completion was queued first), so it holds the deadline state by shared_ptr and
// touches the socket only through a pointer the call clears whenever the socket it names goes
// away or back to the pool. Everything runs on the worker's one thread, so between two
// suspensions of the call nothing else can observe that state.
#include "gw/upstream/http_client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/wire/http_rules.hpp"

namespace gw::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using policy::HttpCall;
using policy::HttpReply;

namespace {

constexpr auto kTuple = net::as_tuple(net::use_awaitable);

struct Conn {
  explicit Conn(const net::any_io_executor& ex) : socket(ex) {}
  tcp::socket socket;
  Clock::time_point idle_since{};
};
using ConnPtr = std::unique_ptr<Conn>;

/// A call's deadline, shared with its timer's handler.
struct Deadline {
  tcp::socket* socket = nullptr; // the connection in use, closed when the deadline passes
  bool passed = false;
};

/// Points the deadline at a socket for as long as this guard lives; declared after the
/// connection it names, so it lets go first.
class InUse {
public:
  InUse(Deadline& d, tcp::socket& s) : d_(d) { d_.socket = &s; }
  ~InUse() { d_.socket = nullptr; }
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;

private:
  Deadline& d_;
};

/// What one exchange on one connection came to.
struct Attempt {
  HttpReply reply;
  bool nothing_back = false; // failed before any byte of an answer arrived
  bool keep = false;         // both sides keep the connection alive, and it is clean
};

/// The peer has neither closed the connection nor sent anything unasked (which would be the
/// start of a garbled exchange): one non-blocking peek, cheaper than a failed round trip.
bool still_open(Conn& c) {
  char probe;
  const ssize_t n = ::recv(c.socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/// RFC 9110 §9.2.2: a request that may be sent twice with the effect of once.
bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

bool field_value_ok(std::string_view v) {
  for (const char c : v) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && c != '\t') || b == 0x7f) return false;
  }
  return true;
}

/// Fields the client writes itself: framing and connection management are per hop.
bool framing(std::string_view name) {
  return text::iequals(name, "host") || text::iequals(name, "content-length") ||
         wire::is_hop_by_hop(name);
}

/// The request's bytes, or an error message (the call cannot be sent as asked).
std::string render(const HttpCall& c, const std::string& host_port, std::string& out) {
  if (!text::is_token(c.method)) return "method " + text::quote(c.method) + " is not a token";
  const bool target_ok = !c.target.empty() && (c.target.front() == '/' || c.target == "*") &&
                         std::none_of(c.target.begin(), c.target.end(), [](char ch) {
                           const auto b = static_cast<unsigned char>(ch);
                           return b <= 0x20 || b >= 0x7f;
                         });
  if (!target_ok) return "target " + text::quote(c.target) + " is not a request target";
  const std::string& host = c.authority.empty() ? host_port : c.authority;
  if (!field_value_ok(host)) return "authority " + text::quote(host) + " is not a Host value";
  out.clear();
  out.reserve(256 + c.body.size());
  out.append(c.method).append(" ").append(c.target).append(" HTTP/1.1\r\nHost: ");
  out.append(host).append("\r\n");
  for (const auto& [name, value] : c.headers) {
    if (!text::is_token(name) || !field_value_ok(value))
      return "header " + text::quote(name) + " is not a valid field";
    if (framing(name)) continue;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  // RFC 9110 §8.6: a request with a body says how long it is; POST, PUT and PATCH say so even
  // when it is empty, as some servers wait for a body otherwise.
  if (!c.body.empty() || c.method == "POST" || c.method == "PUT" || c.method == "PATCH")
    out.append("Content-Length: ").append(std::to_string(c.body.size())).append("\r\n");
  out.append("\r\n").append(c.body);
  return {};
}

void timed_out(HttpReply& r, const std::string& where, const HttpCall& c, const char* during) {
  r.ok = false;
  r.timed_out = true;
  r.error = where + "timed out after " + units::format_duration(c.timeout) + " (" + during + ")";
}

std::string read_error(const error_code& ec, bool nothing, const HttpCall& c,
                       std::uint32_t head_limit) {
  if (ec == http::error::body_limit)
    return "the answer's body is over max_body (" + units::format_size(c.max_body) + ")";
  if (ec == http::error::header_limit)
    return "the answer's head is over " + units::format_size(head_limit);
  const bool closed = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                      ec == net::error::eof || ec == net::error::connection_reset;
  if (closed)
    return nothing ? "the connection closed before an answer"
                   : "the connection closed in the middle of the answer";
  return "reading the answer: " + ec.message();
}

} // namespace

struct HttpClient::Impl {
  Impl(net::any_io_executor e, HttpClientOptions o) : ex(std::move(e)), opts(o) {}

  net::any_io_executor ex;
  const HttpClientOptions opts;
  std::unordered_map<std::string, std::vector<ConnPtr>> idle; // by HOST:PORT, the oldest first
  std::uint64_t opened = 0;
  bool closed = false; // the HttpClient is gone: connections of calls in flight are not kept

  bool reusable(Conn& c, Clock::time_point now) const {
    return now - c.idle_since <= opts.idle_timeout && still_open(c);
  }

  /// The most recently used connection to `key` that is still good, or null.
  ConnPtr take(const std::string& key) {
    const auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    auto& list = it->second;
    const auto now = Clock::now();
    ConnPtr out;
    while (!list.empty() && !out) {
      ConnPtr c = std::move(list.back());
      list.pop_back();
      if (reusable(*c, now)) out = std::move(c);
    }
    std::erase_if(list, [&](const ConnPtr& c) { return now - c->idle_since > opts.idle_timeout; });
    if (list.empty()) idle.erase(it);
    return out;
  }

  void give_back(const std::string& key, ConnPtr c) {
    if (closed || opts.max_idle_per_host == 0) return;
    auto& list = idle[key];
    if (list.size() >= opts.max_idle_per_host) list.erase(list.begin());
    c->idle_since = Clock::now();
    list.push_back(std::move(c));
  }

  void sweep() {
    const auto now = Clock::now();
    for (auto it = idle.begin(); it != idle.end();) {
      std::erase_if(it->second, [&](const ConnPtr& c) { return !reusable(*c, now); });
      it = it->second.empty() ? idle.erase(it) : std::next(it);
    }
  }

  net::awaitable<HttpReply> call(const HttpCall& c);
  net::awaitable<Attempt> exchange(Conn& conn, const std::string& request, const HttpCall& c,
                                   const Deadline& d, const std::string& where);
};

net::awaitable<Attempt> HttpClient::Impl::exchange(Conn& conn, const std::string& request,
                                                   const HttpCall& c, const Deadline& d,
                                                   const std::string& where) {
  Attempt a;
  auto [wec, written] = co_await net::async_write(conn.socket, net::buffer(request), kTuple);
  (void)written;
  if (d.passed || wec) {
    // A write to a connection the peer has just closed usually succeeds (the bytes reach the
    // kernel); one that fails certainly got no answer.
    a.nothing_back = true;
    if (d.passed)
      timed_out(a.reply, where, c, "sending the request");
    else
      a.reply.error = where + "sending the request: " + wec.message();
    co_return a;
  }
  beast::flat_buffer buf;
  bool interim = false;
  for (;;) {
    http::response_parser<http::string_body> p; // a fresh parser per answer
    p.header_limit(opts.max_header_bytes);
    p.body_limit(static_cast<std::uint64_t>(c.max_body));
    if (c.method == "HEAD") p.skip(true);
    auto [rec, n] = co_await http::async_read(conn.socket, buf, p, kTuple);
    (void)n;
    const bool nothing = !interim && !p.got_some() && buf.size() == 0;
    if (d.passed) {
      a.nothing_back = nothing;
      timed_out(a.reply, where, c, nothing ? "waiting for the answer" : "reading the answer");
      co_return a;
    }
    if (rec) {
      a.nothing_back = nothing;
      a.reply.error = where + read_error(rec, nothing, c, opts.max_header_bytes);
      co_return a;
    }
    const unsigned status = p.get().result_int();
    // RFC 9110 §15.2: interim answers come before the final one; a client that sent no
    // Expect or Upgrade still has to read past them.
    if (status >= 100 && status < 200 && status != 101) {
      interim = true;
      continue;
    }
    if (status == 101) {
      a.reply.error = where + "the service switched protocols (101), which the call never asked";
      co_return a;
    }
    auto& msg = p.get();
    a.reply.ok = true;
    a.reply.status = status;
    for (const auto& f : msg) {
      const auto name = f.name_string();
      const auto value = f.value();
      a.reply.headers.emplace_back(text::lower(std::string_view(name.data(), name.size())),
                                   std::string(value.data(), value.size()));
    }
    a.reply.body = std::move(msg.body());
    // Bytes past the answer would be read as the next call's: such a connection is not reused.
    a.keep = p.keep_alive() && buf.size() == 0;
    co_return a;
  }
}

net::awaitable<HttpReply> HttpClient::Impl::call(const HttpCall& c) {
  HttpReply out;
  const bool v6 = c.host.find(':') != std::string::npos;
  const std::string key = (v6 ? "[" + c.host + "]" : c.host) + ":" + std::to_string(c.port);
  const std::string where = "http " + key + ": ";
  error_code ec;
  const auto addr = net::ip::make_address(c.host, ec);
  if (ec) {
    out.error = where + "the host is not an IP address";
    co_return out;
  }
  std::string request;
  if (auto bad = render(c, key, request); !bad.empty()) {
    out.error = where + bad;
    co_return out;
  }

  auto deadline = std::make_shared<Deadline>();
  net::steady_timer timer(ex);
  timer.expires_after(c.timeout);
  timer.async_wait([deadline](error_code tec) {
    if (tec) return; // cancelled: the call ended first
    deadline->passed = true;
    if (deadline->socket) {
      error_code ignored;
      deadline->socket->close(ignored);
    }
  });
  // Whichever way the call ends, the timer's destructor cancels the wait.

  for (int attempt = 0;; ++attempt) {
    ConnPtr conn = attempt == 0 ? take(key) : nullptr;
    const bool reused = conn != nullptr;
    if (!conn) conn = std::make_unique<Conn>(ex);
    InUse in_use(*deadline, conn->socket);
    if (deadline->passed) { // expired while no socket was in use (a zero timeout, say)
      timed_out(out, where, c, "connecting");
      co_return out;
    }
    if (!reused) {
      ++opened;
      auto [cec] = co_await conn->socket.async_connect(tcp::endpoint(addr, c.port), kTuple);
      if (deadline->passed) {
        timed_out(out, where, c, "connecting");
        co_return out;
      }
      if (cec) {
        out.error = where + "connecting: " + cec.message();
        co_return out;
      }
      error_code ignored;
      conn->socket.set_option(tcp::no_delay(true), ignored);
    }
    Attempt a = co_await exchange(*conn, request, c, *deadline, where);
    // The peer closed a pooled connection as the call went out: the call never reached it,
    // so an idempotent one goes again, once, on a new connection.
    if (!a.reply.ok && !deadline->passed && reused && a.nothing_back && attempt == 0 &&
        idempotent(c.method))
      continue;
    if (a.reply.ok && a.keep && !deadline->passed && conn->socket.is_open()) {
      deadline->socket = nullptr;
      give_back(key, std::move(conn));
    }
    co_return std::move(a.reply);
  }
}

HttpClient::HttpClient(net::any_io_executor ex, HttpClientOptions opts)
    : impl_(std::make_shared<Impl>(std::move(ex), opts)) {}

HttpClient::~HttpClient() {
  impl_->closed = true;
  impl_->idle.clear();
}

namespace {
// A coroutine's parameters are copied into its frame when it is called, before it first runs:
// the awaitable holds the Impl from the start, so the client may go away before it is awaited.
net::awaitable<HttpReply> call_on(std::shared_ptr<HttpClient::Impl> impl, const HttpCall& c) {
  co_return co_await impl->call(c);
}
} // namespace

net::awaitable<HttpReply> HttpClient::call(const HttpCall& c) {
  return call_on(impl_, c);
}

void HttpClient::sweep() {
  impl_->sweep();
}

std::size_t HttpClient::idle_connections() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, list] : impl_->idle)
    n += list.size();
  return n;
}

std::uint64_t HttpClient::connections_opened() const noexcept {
  return impl_->opened;
}

} // namespace gw::upstream
