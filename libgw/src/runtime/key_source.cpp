#include "gw/runtime/key_source.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace gw::runtime {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kFetchTimeout = std::chrono::seconds(5);
constexpr auto kSoonestRefetch = std::chrono::seconds(10);
constexpr std::size_t kMaxBody = 1 << 20;

/// Writes the request and reads the answer on a connected stream (plain or TLS).
template <class Stream>
net::awaitable<beast::error_code> exchange(Stream& s, const http::request<http::empty_body>& req,
                                           http::response_parser<http::string_body>& res) {
  beast::flat_buffer buf;
  auto [ec, n] = co_await http::async_write(s, req, net::as_tuple(net::use_awaitable));
  if (!ec)
    std::tie(ec, n) = co_await http::async_read(s, buf, res, net::as_tuple(net::use_awaitable));
  co_return ec;
}

/// GET `url`; the body of a 200 answer, or an error message.
net::awaitable<Result<std::string>> get(const std::string& url, ssl::context& tls) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) co_return fail(errc::invalid_argument, "bad URL " + url);
  const bool https = parsed->scheme() == "https";
  const std::string host = parsed->host();
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : https ? "443" : "80";
  std::string target = std::string(parsed->encoded_path());
  if (target.empty()) target = "/";
  if (parsed->has_query()) target += "?" + std::string(parsed->encoded_query());

  auto ex = co_await net::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, results] =
      co_await resolver.async_resolve(host, port, net::as_tuple(net::use_awaitable));
  if (rec) co_return fail(errc::io_error, "cannot resolve " + host + ": " + rec.message());

  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host);
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "gwd");
  http::response_parser<http::string_body> res;
  res.body_limit(kMaxBody);
  beast::error_code ec;
  if (https) {
    beast::ssl_stream<beast::tcp_stream> s(ex, tls);
    beast::get_lowest_layer(s).expires_after(kFetchTimeout);
    // SNI; SSL_set_tlsext_host_name is a macro with an old-style cast.
    if (!SSL_ctrl(s.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                  const_cast<char*>(host.c_str())))
      co_return fail(errc::io_error, "TLS: cannot set SNI");
    s.set_verify_callback(ssl::host_name_verification(host));
    std::tie(ec, std::ignore) = co_await beast::get_lowest_layer(s).async_connect(
        results, net::as_tuple(net::use_awaitable));
    if (!ec)
      std::tie(ec) =
          co_await s.async_handshake(ssl::stream_base::client, net::as_tuple(net::use_awaitable));
    if (!ec) ec = co_await exchange(s, req, res);
  } else {
    beast::tcp_stream s(ex);
    s.expires_after(kFetchTimeout);
    std::tie(ec, std::ignore) =
        co_await s.async_connect(results, net::as_tuple(net::use_awaitable));
    if (!ec) ec = co_await exchange(s, req, res);
  }
  if (ec) co_return fail(errc::io_error, url + ": " + ec.message());
  if (res.get().result_int() != 200)
    co_return fail(errc::io_error, url + ": HTTP " + std::to_string(res.get().result_int()));
  co_return std::move(res.get().body());
}

class Fetcher final : public policy::KeySource {
public:
  Fetcher(std::string url, bool discovery, units::Millis refresh)
      : url_(std::move(url)), discovery_(discovery), refresh_(refresh), timer_(ioc_) {
    tls_.set_default_verify_paths();
    tls_.set_verify_mode(ssl::verify_peer);
  }
  ~Fetcher() override {
    work_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  /// Starts fetching on its own thread and returns at once; wait_first_fetch() waits for the
  /// first fetch. Called once, before the fetcher is shared.
  void start() {
    std::promise<void> first;
    first_ = first.get_future().share();
    // Discovery fetches two documents, each under its own fetch timeout.
    first_by_ = Clock::now() + (discovery_ ? 2 : 1) * kFetchTimeout + std::chrono::seconds(1);
    net::co_spawn(ioc_, loop(std::move(first)), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  /// Returns once the first fetch has ended (keys or a failure) or its deadline has passed.
  void wait_first_fetch() const {
    auto first = first_; // a copy per waiting thread, as std::shared_future asks
    first.wait_until(first_by_);
  }

  std::shared_ptr<const std::vector<policy::jwt::Key>> keys() const override {
    return keys_.load();
  }

  void refresh_soon() const override {
    const auto now = Clock::now().time_since_epoch().count();
    auto last = last_soon_.load(std::memory_order_relaxed);
    if (now - last < std::chrono::duration_cast<Clock::duration>(kSoonestRefetch).count()) return;
    if (!last_soon_.compare_exchange_strong(last, now)) return;
    // The loop fetches when its wait ends; a request that comes while a fetch is under way (no
    // wait to cancel) is remembered, or it would be lost until the next scheduled refresh.
    net::post(ioc_, [this] {
      soon_ = true;
      timer_.cancel();
    });
  }

private:
  net::awaitable<void> loop(std::promise<void> first) {
    bool told = false;
    for (;;) {
      co_await fetch();
      if (!told) {
        first.set_value();
        told = true;
      }
      if (soon_) { // asked for during the fetch, which may have read the old keys
        soon_ = false;
        continue;
      }
      timer_.expires_after(refresh_);
      auto [ec] = co_await timer_.async_wait(net::as_tuple(net::use_awaitable));
      (void)ec; // cancelled by refresh_soon: fetch now
      soon_ = false;
      if (ioc_.stopped()) co_return;
    }
  }

  net::awaitable<void> fetch() {
    std::string jwks_url = url_;
    if (discovery_) {
      auto doc = co_await get(url_, tls_);
      if (!doc) {
        report(doc.error().message);
        co_return;
      }
      const auto j = nlohmann::json::parse(*doc, nullptr, false);
      if (!j.is_object() || !j.contains("jwks_uri") || !j["jwks_uri"].is_string()) {
        report(url_ + ": no jwks_uri in the discovery document");
        co_return;
      }
      jwks_url = j["jwks_uri"].get<std::string>();
    }
    auto body = co_await get(jwks_url, tls_);
    if (!body) {
      report(body.error().message);
      co_return;
    }
    auto set = policy::jwt::parse_jwks(*body);
    if (!set) {
      report(jwks_url + ": " + set.error().message);
      co_return;
    }
    for (const auto& why : set->skipped)
      std::fprintf(stderr, "gwd: %s: key skipped: %s\n", jwks_url.c_str(), why.c_str());
    // A JWKS served over HTTP is public: a symmetric ("oct") key in it would let anyone sign HS*
    // tokens. HMAC secrets come only from the spec (secret_env, secret_file, a local JWKS).
    if (const auto secrets = std::erase_if(set->keys, [](const auto& k) { return k.is_secret(); }))
      std::fprintf(stderr,
                   "gwd: %s: ignored %zu symmetric (oct) key(s): a fetched JWKS is public\n",
                   jwks_url.c_str(), secrets);
    const std::size_t n = set->keys.size();
    keys_.store(std::make_shared<const std::vector<policy::jwt::Key>>(std::move(set->keys)));
    std::fprintf(stderr, "gwd: fetched %zu JWT key(s) from %s\n", n, jwks_url.c_str());
  }

  void report(const std::string& why) {
    // The last good keys stay in use.
    std::fprintf(stderr, "gwd: JWT keys: %s%s\n", why.c_str(),
                 keys_.load() ? " (keeping the previous keys)" : "");
  }

  std::string url_;
  bool discovery_;
  units::Millis refresh_;
  mutable net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> work_{ioc_.get_executor()};
  ssl::context tls_{ssl::context::tls_client};
  mutable net::steady_timer timer_;
  std::thread thread_;
  std::shared_future<void> first_; // set by start(), then read-only
  Clock::time_point first_by_;     // set by start(), then read-only
  std::atomic<std::shared_ptr<const std::vector<policy::jwt::Key>>> keys_;
  mutable std::atomic<Clock::rep> last_soon_{0};
  mutable bool soon_ = false; // a refetch was asked for; only touched on the fetcher's thread
};

} // namespace

std::shared_ptr<policy::KeySource> key_source(const std::string& url, bool discovery,
                                              units::Millis refresh) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::weak_ptr<Fetcher>> fetchers;
  std::lock_guard lock(mu);
  // One fetcher per URL and refresh interval: policies that ask for a different interval get it.
  const std::string id =
      (discovery ? "oidc " : "jwks ") + url + " " + std::to_string(refresh.count());
  if (auto f = fetchers[id].lock()) return f;
  auto f = std::make_shared<Fetcher>(url, discovery, refresh);
  f->start(); // does not wait: a table with several new URLs fetches them all at once
  fetchers[id] = f;
  return f;
}

void wait_first_fetch(std::span<const std::shared_ptr<policy::KeySource>> sources) {
  // Each fetcher's deadline counts from its own start, and they all started before this call, so
  // the waits overlap: the total is bounded by the latest deadline, not by their sum.
  for (const auto& s : sources)
    if (const auto* f = dynamic_cast<const Fetcher*>(s.get())) f->wait_first_fetch();
}

} // namespace gw::runtime
