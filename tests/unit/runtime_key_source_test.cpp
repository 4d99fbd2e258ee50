#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gw/runtime/key_source.hpp"

using namespace std::chrono_literals;

namespace {

/// A one-thread HTTP/1.1 server on 127.0.0.1 answering GETs from a fixed path -> JSON map (404
/// otherwise), one request per connection. Stops (by shutting its socket down) when destroyed.
class DocServer {
public:
  explicit DocServer(std::map<std::string, std::string> docs) : docs_(std::move(docs)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~DocServer() {
    ::shutdown(fd_, SHUT_RDWR); // ends the blocking accept
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

private:
  void serve() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      const auto sp = req.find(' ');
      const auto path = req.substr(sp + 1, req.find(' ', sp + 1) - sp - 1);
      const auto it = docs_.find(path);
      const std::string body = it == docs_.end() ? "not found" : it->second;
      const std::string res =
          std::string("HTTP/1.1 ") + (it == docs_.end() ? "404 Not Found" : "200 OK") +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      const ssize_t w = ::write(c, res.data(), res.size());
      (void)w;
      ::close(c);
    }
  }

  std::map<std::string, std::string> docs_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// RFC 7515 appendix A.3's P-256 public key.
std::string ec_jwk(const std::string& kid) {
  return R"({"kty":"EC","crv":"P-256","kid":")" + kid +
         R"(","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
         R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})";
}

} // namespace

// Port 1 on loopback refuses at once, so each fetcher's first fetch fails fast; what is checked
// here is which policies share a fetcher.
TEST_CASE("JWKS fetchers are shared per URL and refresh interval", "[runtime]") {
  const std::string url = "http://127.0.0.1:1/jwks.json";
  auto a = gw::runtime::key_source(url, false, gw::units::Millis(5min));
  auto b = gw::runtime::key_source(url, false, gw::units::Millis(5min));
  auto faster = gw::runtime::key_source(url, false, gw::units::Millis(30s));
  auto discovery = gw::runtime::key_source(url, true, gw::units::Millis(5min));
  CHECK(a == b);
  CHECK(a != faster); // a policy asking for a shorter interval gets it
  CHECK(a != discovery);
  const std::vector<std::shared_ptr<gw::policy::KeySource>> all{a, faster, discovery};
  gw::runtime::wait_first_fetch(all);
  // A failed fetch leaves no keys (tokens are refused), not a crash or a hang.
  const auto keys = a->keys();
  CHECK((keys == nullptr || keys->empty()));
}

TEST_CASE("new key sources have their first keys once wait_first_fetch returns", "[runtime]") {
  DocServer server({
      {"/a.json", R"({"keys":[)" + ec_jwk("a") + "]}"},
      {"/b.json", R"({"keys":[)" + ec_jwk("b") + "]}"},
  });
  // A second server, so that the discovery document can name the first one's URL.
  DocServer discovery_server({
      {"/.well-known/openid-configuration",
       R"({"issuer":"https://issuer.test","jwks_uri":")" + server.url("/b.json") + "\"}"},
  });
  const std::vector<std::shared_ptr<gw::policy::KeySource>> sources{
      gw::runtime::key_source(server.url("/a.json"), false, gw::units::Millis(1h)),
      gw::runtime::key_source(discovery_server.url("/.well-known/openid-configuration"), true,
                              gw::units::Millis(1h)),
  };
  gw::runtime::wait_first_fetch(sources);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    INFO("source " << i);
    const auto keys = sources[i]->keys();
    REQUIRE(keys);
    REQUIRE(keys->size() == 1);
    CHECK(keys->front().kid() == (i == 0 ? "a" : "b"));
  }
}

TEST_CASE("symmetric keys in a fetched JWKS are dropped, public keys kept", "[runtime]") {
  DocServer server({
      {"/mixed.json",
       R"({"keys":[{"kty":"oct","kid":"shared","k":"c2VjcmV0LXRoYXQtaXMtcHVibGlj"},)" +
           ec_jwk("ec") + "]}"},
  });
  const std::vector<std::shared_ptr<gw::policy::KeySource>> sources{
      gw::runtime::key_source(server.url("/mixed.json"), false, gw::units::Millis(1h))};
  gw::runtime::wait_first_fetch(sources);
  const auto keys = sources[0]->keys();
  REQUIRE(keys);
  REQUIRE(keys->size() == 1);
  CHECK(keys->front().kid() == "ec");
  CHECK_FALSE(keys->front().is_secret());
}
