// gw::redis::Client: hiredis's async API driven by the worker's io_context, plus the GCRA script.
//
// hiredis 0.14 has no Asio adapter, so this file has one: the context's ev hooks (addRead,
// delRead, addWrite, delWrite, cleanup) start and stop async_wait(wait_read / wait_write) on a
// posix::stream_descriptor wrapped around hiredis's socket; the waits call
// redisAsyncHandleRead/Write. The descriptor is released, never closed: hiredis owns the fd.
//
// Lifetimes. hiredis calls every command callback exactly once: with the reply, or with NULL
// when the context goes away (error, drop on timeout, ~Client). A command's privdata is a heap
// shared_ptr<Pending>; the callback stores the reply, cancels the waiting coroutine's timer (which
// resumes it later, through the executor: no user code ever runs inside a hiredis callback) and
// deletes the privdata. A coroutine that times out marks its Pending done, so a late reply is
// ignored. Coroutines hold the Impl by shared_ptr, so one resumed after ~Client is safe: the
// context is gone and every further call fails at once. The cleanup hook is the single place
// where a context's end is noticed (connect failure, I/O error, drop, destruction).
#include "gw/redis/client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <optional>
#include <span>
#include <vector>

#include "gw/core/text.hpp"

namespace gw::redis {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);
constexpr milliseconds kMinBackoff{100};
constexpr milliseconds kMaxBackoff{2000};

namespace {

// GCRA on the server's clock (microseconds). The key holds the TAT (theoretical arrival time);
// a take is allowed when tat + T - T*B <= now. Time values fit a Lua double exactly (< 2^53).
// The key expires when the bucket is full again (now >= TAT). Returns
// {allowed, remaining, retry_after_ms, reset_ms}.
constexpr std::string_view kScript = R"lua(
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, 0, math.ceil((allow_at - now) / 1000), math.ceil((tat - now) / 1000)}
end
local reset = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', reset)
return {1, math.floor((now - allow_at) / interval), 0, reset}
)lua";

std::string sha1_hex(std::string_view s) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md.data(), &len, EVP_sha1(), nullptr);
  return text::hex(std::span<const unsigned char>(md.data(), len));
}

/// A reply copied out of hiredis's, which is freed when the callback returns.
struct Reply {
  int type = 0;
  long long integer = 0;
  std::string str;
  std::vector<Reply> elements;
};

Reply copy(const redisReply& r) {
  Reply out{r.type, r.integer, {}, {}};
  if (r.str) out.str.assign(r.str, r.len);
  for (std::size_t i = 0; i < r.elements; ++i)
    out.elements.push_back(copy(*r.element[i]));
  return out;
}

std::unexpected<Error> failure(std::errc e, std::string msg) {
  return std::unexpected<Error>(Error(std::make_error_code(e), std::move(msg)));
}

/// One command waiting for its reply; shared by the coroutine and hiredis's privdata.
struct Pending {
  explicit Pending(const net::any_io_executor& ex) : timer(ex) {}
  net::steady_timer timer; // expires at the deadline; cancelled by the reply callback
  bool done = false;       // reply (or connection loss) seen, or the coroutine gave up
  std::optional<Reply> reply;
  std::string error; // when done without a reply
};

/// The Asio side of one hiredis context. Waits hold a shared_ptr; `ac` is null after cleanup.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(const net::any_io_executor& ex, redisAsyncContext* c, Client::Impl* o)
      : sd(ex), ac(c), owner(o) {}
  net::posix::stream_descriptor sd;
  redisAsyncContext* ac;
  Client::Impl* owner;
  bool want[2] = {false, false}; // [0] read, [1] write: what hiredis asked for
  bool busy[2] = {false, false}; // a wait is outstanding
};

} // namespace

struct Client::Impl {
  Impl(net::any_io_executor e, std::string h, std::uint16_t p, milliseconds t)
      : ex(std::move(e)), host(std::move(h)), port(p), timeout(t),
        where("redis " + host + ":" + std::to_string(port)) {}
  ~Impl() { shutdown(); }

  net::any_io_executor ex;
  std::string host;
  std::uint16_t port;
  milliseconds timeout;
  const std::string where;         // "redis HOST:PORT", as every error message starts
  redisAsyncContext* ac = nullptr; // the current context (connecting or connected), if any
  std::shared_ptr<Conn> conn;
  bool is_connected = false;
  bool closing = false;
  Clock::time_point next_attempt{};
  milliseconds backoff = kMinBackoff;
  std::string last_error = "not connected";

  bool connect();
  void retry_later() {
    next_attempt = Clock::now() + backoff;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  void shutdown() {
    closing = true;
    if (ac) redisAsyncFree(ac); // fails the pending calls, then the cleanup hook runs
  }
  net::awaitable<Result<Reply>> call(std::span<const std::string_view> args,
                                     Clock::time_point deadline);
};

namespace {

void arm(const std::shared_ptr<Conn>& c, int dir) {
  if (c->busy[dir] || !c->ac) return;
  c->busy[dir] = true;
  const auto what =
      dir ? net::posix::descriptor_base::wait_write : net::posix::descriptor_base::wait_read;
  c->sd.async_wait(what, [c, dir](error_code ec) {
    c->busy[dir] = false;
    if (ec == net::error::operation_aborted || !c->ac || !c->want[dir]) return;
    if (dir)
      redisAsyncHandleWrite(c->ac); // may end the context (the cleanup hook nulls c->ac)
    else
      redisAsyncHandleRead(c->ac);
    if (c->ac && c->want[dir]) arm(c, dir);
  });
}

Conn& conn_of(void* d) {
  return *static_cast<Conn*>(d);
}
void add_read(void* d) {
  conn_of(d).want[0] = true;
  arm(conn_of(d).shared_from_this(), 0);
}
void del_read(void* d) {
  conn_of(d).want[0] = false; // an outstanding wait completes and does nothing
}
void add_write(void* d) {
  conn_of(d).want[1] = true;
  arm(conn_of(d).shared_from_this(), 1);
}
void del_write(void* d) {
  conn_of(d).want[1] = false;
}

/// The context is going away (hiredis closes the fd and frees it right after this returns).
void cleanup(void* d) {
  const std::shared_ptr<Conn> c = conn_of(d).shared_from_this();
  redisAsyncContext* ac = std::exchange(c->ac, nullptr);
  if (!ac) return;
  ac->ev.addRead = ac->ev.delRead = ac->ev.addWrite = ac->ev.delWrite = ac->ev.cleanup = nullptr;
  c->sd.release(); // outstanding waits complete with operation_aborted; the fd stays open
  Client::Impl& impl = *c->owner;
  if (impl.ac == ac) {
    impl.ac = nullptr;
    impl.conn.reset();
    impl.is_connected = false;
    if (!impl.closing) impl.retry_later();
  }
}

void on_connect(const redisAsyncContext* ac, int status) {
  auto& impl = *static_cast<Client::Impl*>(ac->data);
  if (status == REDIS_OK)
    impl.is_connected = true;
  else
    impl.last_error = ac->c.errstr; // the cleanup hook follows
}

void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
  const std::unique_ptr<std::shared_ptr<Pending>> holder(
      static_cast<std::shared_ptr<Pending>*>(privdata));
  Pending& p = **holder;
  if (r) static_cast<Client::Impl*>(ac->data)->backoff = kMinBackoff; // the server is alive
  if (p.done) return;                                                 // the caller timed out
  p.done = true;
  if (r)
    p.reply = copy(*static_cast<const redisReply*>(r));
  else
    p.error = ac->c.err ? ac->c.errstr : "connection closed";
  p.timer.cancel(); // resumes the caller through the executor, not from here
}

} // namespace

bool Client::Impl::connect() {
  redisAsyncContext* c = redisAsyncConnect(host.c_str(), port); // non-blocking connect
  if (!c || c->err) {
    last_error = c ? c->errstr : "out of memory";
    if (c) redisAsyncFree(c);
    retry_later();
    return false;
  }
  auto cn = std::make_shared<Conn>(ex, c, this);
  error_code ec;
  cn->sd.assign(c->c.fd, ec);
  if (ec) {
    last_error = ec.message();
    redisAsyncFree(c);
    retry_later();
    return false;
  }
  c->data = this;
  c->ev.data = cn.get();
  c->ev.addRead = add_read;
  c->ev.delRead = del_read;
  c->ev.addWrite = add_write;
  c->ev.delWrite = del_write;
  c->ev.cleanup = cleanup;
  ac = c;
  conn = std::move(cn);
  redisAsyncSetConnectCallback(c, on_connect); // waits for writability: connect done
  return true;
}

net::awaitable<Result<Reply>> Client::Impl::call(std::span<const std::string_view> args,
                                                 Clock::time_point deadline) {
  if (closing) co_return failure(std::errc::not_connected, where + ": client closed");
  if (!ac) {
    const auto wait = std::chrono::duration_cast<milliseconds>(next_attempt - Clock::now()).count();
    if (wait > 0) {
      std::string msg =
          where + ": down (" + last_error + "); next attempt in " + std::to_string(wait) + " ms";
      co_return failure(std::errc::not_connected, std::move(msg));
    }
    if (!connect()) co_return failure(std::errc::not_connected, where + ": " + last_error);
  }
  std::array<const char*, 8> argv{};
  std::array<std::size_t, 8> lens{};
  for (std::size_t i = 0; i < args.size() && i < argv.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  auto p = std::make_shared<Pending>(ex);
  p->timer.expires_at(deadline);
  auto* holder = new std::shared_ptr<Pending>(p);
  const int argc = static_cast<int>(std::min(args.size(), argv.size()));
  if (redisAsyncCommandArgv(ac, on_reply, holder, argc, argv.data(), lens.data()) != REDIS_OK) {
    delete holder;
    co_return failure(std::errc::not_connected, where + ": cannot send the command");
  }
  if (!p->done) co_await p->timer.async_wait(kTuple);
  if (!p->done) {
    // No reply in time: the server is stuck or unreachable. Drop the connection (which fails the
    // calls queued behind this one) and back off, rather than let later calls wait too.
    p->done = true;
    last_error = "timeout";
    if (ac && !closing) redisAsyncFree(ac);
    std::string msg = where + ": no reply within " + std::to_string(timeout.count()) + " ms";
    co_return failure(std::errc::timed_out, std::move(msg));
  }
  if (!p->reply) co_return failure(std::errc::not_connected, where + ": " + p->error);
  co_return std::move(*p->reply);
}

Client::Client(net::any_io_executor ex, std::string host, std::uint16_t port, milliseconds timeout)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(host), port, timeout)) {}

Client::~Client() {
  impl_->shutdown();
}

bool Client::connected() const noexcept {
  return impl_->ac && impl_->is_connected;
}

std::string_view Client::script_sha1() noexcept {
  static const std::string sha = sha1_hex(kScript);
  return sha;
}

namespace {
Result<Client::Take> to_take(const Reply& r, const Client::Impl& impl) {
  if (r.type == REDIS_REPLY_ERROR) return fail(errc::io_error, impl.where + ": " + r.str);
  if (r.type != REDIS_REPLY_ARRAY || r.elements.size() != 4)
    return fail(errc::io_error, impl.where + ": unexpected reply to the rate limit script");
  for (const auto& e : r.elements)
    if (e.type != REDIS_REPLY_INTEGER)
      return fail(errc::io_error, impl.where + ": unexpected reply to the rate limit script");
  return Client::Take{r.elements[0].integer == 1, r.elements[1].integer, r.elements[2].integer,
                      r.elements[3].integer};
}
} // namespace

net::awaitable<Result<Client::Take>> Client::take(std::string_view key, std::int64_t interval_us,
                                                  std::int64_t burst) {
  const std::shared_ptr<Impl> self = impl_; // keeps the state alive if *this dies meanwhile
  if (interval_us <= 0 || burst <= 0)
    co_return fail(errc::invalid_argument, self->where + ": interval and burst must be positive");
  const std::string k(key);
  // Formatted into the coroutine frame: no allocation per take.
  std::array<char, 24> iv_buf, bs_buf; // an int64 in decimal takes at most 20
  auto decimal = [](std::array<char, 24>& buf, std::int64_t v) {
    const char* end = std::to_chars(buf.data(), buf.data() + buf.size(), v).ptr;
    return std::string_view(buf.data(), static_cast<std::size_t>(end - buf.data()));
  };
  const std::string_view iv = decimal(iv_buf, interval_us);
  const std::string_view bs = decimal(bs_buf, burst);
  const auto deadline = Clock::now() + self->timeout; // for EVALSHA and a fallback EVAL together
  std::array<std::string_view, 6> args{"EVALSHA", script_sha1(), "1", k, iv, bs};
  const std::span<const std::string_view> argspan(args);
  Result<Reply> r = co_await self->call(argspan, deadline);
  if (r && r->type == REDIS_REPLY_ERROR && r->str.starts_with("NOSCRIPT")) {
    args[0] = "EVAL"; // the script cache is empty (first use, restart, SCRIPT FLUSH)
    args[1] = kScript;
    r = co_await self->call(argspan, deadline);
  }
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return to_take(*r, *self);
}

} // namespace gw::redis
