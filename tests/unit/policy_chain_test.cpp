#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <crypt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "gw/policy/buckets.hpp"
#include "gw/policy/jwt.hpp"
#include "gw/policy/route_chain.hpp"
#include "gw/policy/settings.hpp"
#include "support/spec_builder.hpp"
#include "support/temp_dir.hpp"
#include "support/test_keys.hpp"

using namespace gw::policy;
using gwtest::build_spec;
using gwtest::kPrelude;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;   // seconds, for JWT times
constexpr std::int64_t kT = 5'000'000'000'000; // nanoseconds, a steady-clock reading
constexpr std::int64_t kMs = 1'000'000;        // nanoseconds

using gwtest::TempDir;

/// What the session gives policies: a parsed request head.
class FakeRequest final : public RequestView {
public:
  FakeRequest& header(std::string name, std::string value) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    headers_.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  FakeRequest& query(std::string q) {
    query_ = std::move(q);
    return *this;
  }
  FakeRequest& method(std::string m) {
    method_ = std::move(m);
    return *this;
  }
  FakeRequest& ip(std::string a) {
    ip_ = std::move(a);
    return *this;
  }
  std::string_view method() const noexcept override { return method_; }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [n, v] : headers_)
      if (n == name) return std::string_view(v);
    return std::nullopt;
  }
  void for_each_header(
      const std::function<void(std::string_view, std::string_view)>& fn) const override {
    for (const auto& [n, v] : headers_)
      fn(n, v);
  }
  std::string_view path() const noexcept override { return "/"; }
  std::string_view query() const noexcept override { return query_; }
  std::string_view host() const noexcept override { return "api.test"; }
  std::string_view client_ip() const noexcept override { return ip_; }
  std::string_view request_id() const noexcept override { return "test-id"; }

private:
  std::string method_ = "GET", query_, ip_ = "192.0.2.10";
  std::vector<std::pair<std::string, std::string>> headers_;
};

/// The steady clock local buckets read in these tests (Registry::clock_ns).
std::int64_t fake_now_ns = kT;
std::int64_t fake_clock() {
  return fake_now_ns;
}

/// What runtime::Snapshot hands PolicySet::build: the table's policies and each route's list.
gw::Result<std::shared_ptr<const PolicySet>> build_policies(const gw::model::Config& cfg,
                                                            const Registry& reg) {
  std::vector<PolicyDef> defs;
  for (const auto& p : cfg.policies)
    defs.push_back(PolicyDef{p.name, p.kind, p.config});
  std::vector<std::vector<std::uint32_t>> routes;
  for (const auto& r : cfg.routes)
    routes.push_back(r.policies);
  return PolicySet::build(defs, routes, reg);
}

/// A spec built through the real reader and validator, and its policies ready to run.
class Gateway {
public:
  explicit Gateway(const std::string& toml, const std::string& name = "test.toml",
                   Registry reg = {})
      : b_(build_spec(toml, false, name)) {
    INFO(b_.dump());
    REQUIRE(b_.config);
    if (!reg.buckets) reg.buckets = &buckets_;
    if (!reg.clock_ns) reg.clock_ns = &fake_clock;
    fake_now_ns = kT;
    auto s = build_policies(*b_.config, reg);
    INFO((s ? std::string() : s.error().message));
    REQUIRE(s);
    set_ = *s;
  }
  const RouteChain& route(const std::string& name) const {
    const auto* r = b_.config->find_route(name);
    REQUIRE(r != nullptr);
    return set_->route(static_cast<std::size_t>(r - b_.config->routes.data()));
  }
  const gw::model::Config& config() const { return *b_.config; }
  BucketRegistry& buckets() { return buckets_; }

private:
  gwtest::Built b_;
  BucketRegistry buckets_;
  std::shared_ptr<const PolicySet> set_;
};

/// What a route's filters made of one request.
struct Checked {
  std::optional<LocalReply> refusal; // as the filter that answered returned it
  Identity id;
  Edits edits;
  std::vector<RedisTake> takes; // what the filters asked Redis, in order
  std::vector<std::pair<std::string, bool>> notes;
  FilterCounters counters;
  unsigned status() const { return refusal ? refusal->effective_status() : 0u; }
  /// The reply's fields as the proxy sends them: its own, then what earlier filters added.
  HeaderList sent() const {
    HeaderList out = refusal ? refusal->headers : HeaderList{};
    out.insert(out.end(), edits.response_add.begin(), edits.response_add.end());
    return out;
  }
};

/// Redis's answer to a take; by default every take is allowed.
using FakeRedis = std::function<RedisReply(const RedisTake&)>;
RedisReply redis_allows(const RedisTake&) {
  RedisReply r;
  r.ok = true;
  r.allowed = true;
  r.remaining = 9;
  r.reset_ms = 100;
  return r;
}

/// Runs a route's on_request hooks as the proxy does: in order until one answers, performing
/// each Redis take a filter asks for with `redis` and handing the reply to its resume.
Checked check(const RouteChain& chain, const FakeRequest& req, std::string_view route = "r",
              const FakeRedis& redis = redis_allows) {
  Checked c;
  FilterContext ctx;
  ctx.request = &req;
  ctx.route = route;
  ctx.now_s = kNow;
  ctx.counters = &c.counters;
  chain.begin(ctx);
  const auto filters = chain.filters();
  for (std::size_t i = 0; i < filters.size() && !c.refusal; ++i) {
    ctx.position = i;
    Verdict v = filters[i]->on_request(ctx);
    while (v.type() == Verdict::Type::call) {
      const auto* take = std::get_if<RedisTake>(&v.call());
      REQUIRE(take != nullptr);
      c.takes.push_back(*take);
      v = filters[i]->resume(ctx, IoResult(redis(*take)));
    }
    if (v.type() == Verdict::Type::reply) c.refusal = std::move(v.reply());
  }
  c.id = std::move(ctx.identity);
  c.edits = std::move(ctx.edits);
  c.notes = std::move(ctx.notes);
  return c;
}

std::string text_of(const HeaderList& fields) {
  std::string out;
  for (const auto& [k, v] : fields)
    out += k + ": " + v + "\r\n";
  return out;
}

bool has_line(const std::string& block, const std::string& line) {
  return block.find(line + "\r\n") != std::string::npos;
}

bool has_line(const HeaderList& fields, const std::string& line) {
  return has_line(text_of(fields), line);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// ---- keys: generated at test time (support/test_keys.hpp)

using gwtest::other_p256_key;
using gwtest::p256_key;
using gwtest::rsa_key;
using gwtest::TestKey;

jwt::SigningKey signer(const TestKey& k) {
  auto s = jwt::SigningKey::from_pem(k.priv_pem);
  REQUIRE(s);
  return *s;
}

std::string token(jwt::Alg alg, const jwt::SigningKey& key, const json& claims,
                  const json& header = json::object()) {
  auto t = jwt::sign(alg, key, claims, header);
  REQUIRE(t);
  return *t;
}

json staff_claims() {
  return {{"sub", "alice"},        {"iss", "https://idp.example"}, {"aud", "shop-api"},
          {"exp", kNow + 600},     {"email", "alice@example.com"}, {"tenant", "t1"},
          {"scope", "orders:read"}};
}

/// crypt(3) hash of `pass` with a fresh random salt of the given method.
std::string crypt_hash(const std::string& pass, const char* prefix, unsigned long count) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn(prefix, count, nullptr, 0, salt, sizeof salt) != nullptr);
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_rn(pass.c_str(), salt, data.get(), sizeof *data);
  REQUIRE(h != nullptr);
  REQUIRE(h[0] == '$');
  return h;
}

std::string route_toml(const std::string& name, const std::string& prefix,
                       const std::string& policies) {
  return "[[routes]]\nname = \"" + name + "\"\nupstream = \"u\"\nprefix = \"" + prefix +
         "\"\npolicies = [" + policies + "]\n";
}

} // namespace

// ---- GCRA and buckets

TEST_CASE("gcra allows a full burst at once, then refuses until the next token", "[policy]") {
  const std::int64_t interval = 100 * kMs;
  std::int64_t tat = 0;
  for (std::int64_t k = 1; k <= 3; ++k) {
    const Take t = gcra(tat, kT, interval, 3);
    INFO(k);
    CHECK(t.allowed);
    CHECK(t.remaining == 3 - k);
    CHECK(t.reset_ms == 100 * k); // until the bucket is full again
  }
  const std::int64_t drained = tat;
  Take t = gcra(tat, kT, interval, 3);
  CHECK_FALSE(t.allowed);
  CHECK(t.remaining == 0);
  CHECK(t.retry_after_ms == 100);
  CHECK(t.reset_ms == 300);
  CHECK(tat == drained); // a refusal costs nothing

  t = gcra(tat, kT + 40 * kMs, interval, 3);
  CHECK_FALSE(t.allowed);
  CHECK(t.retry_after_ms == 60);
  t = gcra(tat, kT + 99'500'000, interval, 3); // half a millisecond early: rounds up, never 0
  CHECK_FALSE(t.allowed);
  CHECK(t.retry_after_ms == 1);

  // One interval later exactly one token is back.
  t = gcra(tat, kT + interval, interval, 3);
  CHECK(t.allowed);
  CHECK(t.remaining == 0);
  CHECK(t.reset_ms == 300);
  CHECK_FALSE(gcra(tat, kT + interval, interval, 3).allowed);

  // Long idle: the bucket is full again, but never holds more than the burst.
  int allowed = 0;
  for (int i = 0; i < 10; ++i)
    allowed += gcra(tat, kT + 60'000 * kMs, interval, 3).allowed ? 1 : 0;
  CHECK(allowed == 3);
}

TEST_CASE("gcra spreads a steady rate: one request per interval", "[policy]") {
  const std::int64_t interval = 10 * kMs;
  std::int64_t tat = 0;
  int allowed = 0;
  // 1000 requests, one every millisecond, bucket of 5 tokens at 100/s: 5 + 999ms / 10ms.
  for (int i = 0; i < 1000; ++i)
    allowed += gcra(tat, kT + i * kMs, interval, 5).allowed ? 1 : 0;
  CHECK(allowed == 5 + 99);
}

TEST_CASE("buckets shared by threads never allow more than the burst plus the refill", "[policy]") {
  constexpr int kThreads = 4, kTakes = 5000;
  SECTION("a fixed clock: exactly the burst") {
    Buckets b(1000, 50); // 1ms per token, 50 tokens
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
      threads.emplace_back([&] {
        for (int j = 0; j < kTakes; ++j)
          if (b.take("client", kT).allowed) allowed.fetch_add(1, std::memory_order_relaxed);
      });
    for (auto& t : threads)
      t.join();
    CHECK(allowed.load() == 50);
    CHECK(b.size() == 1);
    CHECK(b.take("other-client", kT).allowed); // keys are independent
    CHECK(b.size() == 2);
  }
  SECTION("an advancing clock: at most burst + elapsed / interval") {
    const std::int64_t interval_us = 1000, burst = 10,
                       step = 100'000; // a take every 0.1ms of fake time
    Buckets b(interval_us, burst);
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
      threads.emplace_back([&] {
        for (int j = 0; j < kTakes; ++j)
          if (b.take("client", kT + j * step).allowed)
            allowed.fetch_add(1, std::memory_order_relaxed);
      });
    for (auto& t : threads)
      t.join();
    const std::int64_t elapsed = (kTakes - 1) * step;
    CHECK(allowed.load() <= burst + elapsed / (interval_us * 1000));
    CHECK(allowed.load() >= burst);
  }
}

// A worker that read the clock, then lost the race to another worker's newer update: the clock
// is read again after the bucket is seen, so its answer is judged at a time no older than the
// update (one token left, not zero; and never a refusal the next microsecond would not give).
Buckets* racing_bucket = nullptr;
int clock_calls = 0;
std::int64_t racing_clock() {
  if (clock_calls++ == 0) {
    CHECK(racing_bucket->take("client", kT + 1000).remaining == 2); // the other worker
    return kT;                                                      // our stale reading
  }
  return kT + 2000;
}

TEST_CASE("buckets judge a take at a clock reading no older than the update it sees", "[policy]") {
  Buckets b(20'000'000, 3); // 3 per minute
  racing_bucket = &b;
  clock_calls = 0;
  const Take t = b.take("client", &racing_clock);
  CHECK(t.allowed);
  CHECK(t.remaining == 1);
  CHECK(clock_calls >= 2);
  CHECK(b.take("client", kT + 3000).remaining == 0);
  CHECK_FALSE(b.take("client", kT + 4000).allowed);
}

TEST_CASE("buckets drop full buckets as the map grows, never a bucket in use", "[policy]") {
  const std::int64_t interval = 1000 * kMs;
  Buckets b(interval / 1000, 3);
  for (int i = 0; i < 3; ++i)
    REQUIRE(b.take("victim", kT).allowed);
  REQUIRE_FALSE(b.take("victim", kT).allowed);
  constexpr int kFlood = 200'000; // more than 4096 keys in every one of the 32 shards
  for (int i = 0; i < kFlood; ++i)
    b.take("flood-" + std::to_string(i), kT);
  CHECK(b.size() == kFlood + 1); // nothing was full yet
  // Two intervals later the flood's buckets are full again; the victim's is not.
  const std::int64_t later = kT + 2 * interval;
  constexpr int kLate = 100'000;
  for (int i = 0; i < kLate; ++i)
    b.take("late-" + std::to_string(i), later);
  CHECK(b.size() < kLate + kFlood / 2); // the flood's full buckets went (without sweeps: 300'001)
  // The victim kept its count: two tokens refilled, not a fresh bucket of three.
  CHECK(b.take("victim", later).allowed);
  CHECK(b.take("victim", later).allowed);
  CHECK_FALSE(b.take("victim", later).allowed);
}

TEST_CASE("the bucket registry keeps counts for an unchanged policy only", "[policy]") {
  BucketRegistry reg;
  const std::string v1 = "limit\n{\"rate\":\"2/s\"}", v2 = "limit\n{\"rate\":\"3/s\"}";
  auto a = reg.get(v1, 500'000, 2);
  CHECK(a->take("k", kT).allowed);
  CHECK(a->take("k", kT).allowed);
  CHECK_FALSE(a->take("k", kT).allowed);

  auto again = reg.get(v1, 500'000, 2); // a reload that keeps the policy
  CHECK(again == a);
  CHECK_FALSE(again->take("k", kT).allowed);

  auto changed = reg.get(v2, 333'333, 3); // a changed policy starts fresh
  CHECK(changed != a);
  CHECK(changed->take("k", kT).allowed);

  a.reset();
  again.reset();
  auto fresh = reg.get(v1, 500'000, 2); // nobody held the old one: gone
  const Take t = fresh->take("k", kT);
  CHECK(t.allowed);
  CHECK(t.remaining == 1);
}

// ---- api_key

namespace {
std::string api_key_spec(const std::string& extra = "") {
  return std::string(kPrelude) + R"(
[policies.keys]
kind = "api_key"
header = "x-api-key"
query = "api_key"
cookie = "apikey"
keys_file = "keys.txt"
)" + extra +
         route_toml("r", "/", "\"keys\"");
}
} // namespace

TEST_CASE("api_key finds the key in a header, the query or a cookie", "[policy]") {
  TempDir dir;
  dir.write("keys.txt", key_file_line("acme", "acme-key-1") + "\n" +
                            key_file_line("globex", "globex-key-2") + "\n");
  Gateway gw(api_key_spec(), dir.spec_name());
  const auto& rp = gw.route("r");
  CHECK(rp.facts().secret_params == std::vector<std::string>{"api_key"});

  SECTION("header") {
    auto c = check(rp, FakeRequest().header("X-Api-Key", "acme-key-1"));
    REQUIRE_FALSE(c.refusal);
    CHECK(c.id.authenticated);
    CHECK(c.id.consumer == "acme");
    CHECK(contains(c.edits.drop, "x-api-key")); // stripped before forwarding
    CHECK(c.edits.set == Pairs{{"x-consumer", "acme"}});
  }
  SECTION("query") {
    auto c = check(rp, FakeRequest().query("page=2&api_key=globex-key-2"));
    REQUIRE_FALSE(c.refusal);
    CHECK(c.id.consumer == "globex");
    CHECK(c.edits.drop_query == std::vector<std::string>{"api_key"});
    CHECK_FALSE(contains(c.edits.drop, "x-api-key"));
  }
  SECTION("cookie") {
    auto c = check(rp, FakeRequest().header("cookie", "theme=dark; apikey=acme-key-1; lang=en"));
    REQUIRE_FALSE(c.refusal);
    CHECK(c.id.consumer == "acme");
    CHECK(c.edits.drop_cookies == std::vector<std::string>{"apikey"});
  }
  SECTION("a caller cannot name itself with the consumer header") {
    auto c =
        check(rp, FakeRequest().header("x-consumer", "admin").header("x-api-key", "globex-key-2"));
    REQUIRE_FALSE(c.refusal);
    CHECK(c.edits.drops("x-consumer"));
    CHECK(c.edits.set == Pairs{{"x-consumer", "globex"}});
  }
}

TEST_CASE("api_key refuses a wrong or missing key with 401 and a challenge", "[policy]") {
  TempDir dir;
  dir.write("keys.txt", key_file_line("acme", "acme-key-1") + "\n");
  Gateway gw(api_key_spec(), dir.spec_name());
  const auto& rp = gw.route("r");
  const std::string challenge =
      "www-authenticate: ApiKey realm=\"gw\", in=\"header\", name=\"x-api-key\"";

  auto wrong = check(rp, FakeRequest().header("x-api-key", "acme-key-2"));
  REQUIRE(wrong.refusal);
  CHECK(wrong.refusal->effective_status() == 401);
  CHECK(wrong.refusal->message == "authentication failed: unknown API key");
  CHECK(has_line(wrong.refusal->headers, challenge));
  CHECK_FALSE(wrong.id.authenticated);
  CHECK(wrong.edits.set.empty());

  auto prefix = check(rp, FakeRequest().header("x-api-key", "acme-key-1 "));
  REQUIRE(prefix.refusal);
  CHECK(prefix.refusal->effective_status() == 401);

  auto missing = check(rp, FakeRequest().header("authorization", "Bearer acme-key-1"));
  REQUIRE(missing.refusal);
  CHECK(missing.refusal->effective_status() == 401);
  CHECK(missing.refusal->message == "authentication required");
  CHECK(has_line(missing.refusal->headers, challenge));
}

TEST_CASE("api_key with strip = false forwards the key, and consumer_header can be renamed",
          "[policy]") {
  TempDir dir;
  dir.write("keys.txt", key_file_line("acme", "acme-key-1") + "\n");
  Gateway gw(std::string(kPrelude) + R"(
[policies.keys]
kind = "api_key"
header = "x-api-key"
keys_file = "keys.txt"
strip = false
consumer_header = "X-Partner"
)" + route_toml("r", "/", "\"keys\""),
             dir.spec_name());
  auto c = check(gw.route("r"), FakeRequest().header("x-api-key", "acme-key-1"));
  REQUIRE_FALSE(c.refusal);
  CHECK_FALSE(contains(c.edits.drop, "x-api-key"));
  REQUIRE(c.edits.protect != nullptr); // a client's own X-Partner never reaches the upstream
  CHECK(*c.edits.protect == std::vector<std::string>{"x-partner"});
  CHECK(c.edits.set == Pairs{{"x-partner", "acme"}});
}

// ---- basic

TEST_CASE("basic: htpasswd lines with trailing tabs, spaces or CRLF still verify", "[policy]") {
  // Editors leave whitespace at line ends; the hash must not keep it, or its user always gets 401.
  TempDir dir;
  const std::string dave = crypt_hash("open sesame", "$6$", 1000);
  const std::string erin = crypt_hash("hunter2", "$6$", 1000);
  dir.write("htpasswd", "dave:" + dave + "\t\n  erin:" + erin + " \t\r\n");
  Gateway gw(std::string(kPrelude) +
                 "[policies.staff]\nkind = \"basic\"\nhtpasswd_file = \"htpasswd\"\n" +
                 route_toml("r", "/", "\"staff\""),
             dir.spec_name());
  const std::vector<std::pair<std::string, std::string>> logins = {{"dave", "open sesame"},
                                                                   {"erin", "hunter2"}};
  for (const auto& [user, pass] : logins) {
    INFO(user);
    auto c = check(gw.route("r"),
                   FakeRequest().header("authorization", "Basic " + base64(user + ":" + pass)));
    REQUIRE_FALSE(c.refusal);
    CHECK(c.id.consumer == user);
  }
}

TEST_CASE("basic checks passwords against bcrypt and SHA-512 crypt hashes", "[policy]") {
  TempDir dir;
  const std::string alice = crypt_hash("correct horse", "$2b$", 4);
  const std::string bob = crypt_hash("battery staple", "$6$", 1000);
  const std::string carol = crypt_hash("pa:ss", "$6$", 1000);
  REQUIRE(alice.starts_with("$2b$"));
  REQUIRE(bob.starts_with("$6$"));
  dir.write("htpasswd", "alice:" + alice + "\nbob:" + bob + "\ncarol:" + carol + "\n");
  Gateway gw(
      std::string(kPrelude) +
          "[policies.staff]\nkind = \"basic\"\nhtpasswd_file = \"htpasswd\"\nrealm = \"staff\"\n" +
          route_toml("r", "/", "\"staff\""),
      dir.spec_name());
  const auto& rp = gw.route("r");
  auto basic = [](std::string_view user_pass) {
    return FakeRequest().header("authorization", "Basic " + base64(user_pass));
  };
  const std::string challenge = "www-authenticate: Basic realm=\"staff\", charset=\"UTF-8\"";

  auto ok = check(rp, basic("alice:correct horse"));
  REQUIRE_FALSE(ok.refusal);
  CHECK(ok.id.consumer == "alice");
  CHECK(contains(ok.edits.drop, "authorization"));
  CHECK(ok.edits.set == Pairs{{"x-consumer", "alice"}});

  auto sha = check(rp, basic("bob:battery staple"));
  REQUIRE_FALSE(sha.refusal);
  CHECK(sha.id.consumer == "bob");

  // A password may hold colons (RFC 7617 §2: the user-id may not).
  auto colon = check(rp, basic("carol:pa:ss"));
  REQUIRE_FALSE(colon.refusal);
  CHECK(colon.id.consumer == "carol");

  for (const char* bad :
       {"alice:correct horsE", "alice:", "bob:correct horse", "mallory:correct horse", "alice"}) {
    INFO(bad);
    auto c = check(rp, basic(bad));
    REQUIRE(c.refusal);
    CHECK(c.refusal->effective_status() == 401);
    CHECK(c.refusal->message == "authentication failed: bad credentials");
    CHECK(has_line(c.refusal->headers, challenge));
    CHECK(c.edits.set.empty());
  }
  // After a success is remembered, the same user with another password is still refused.
  REQUIRE_FALSE(check(rp, basic("alice:correct horse")).refusal);
  CHECK(check(rp, basic("alice:correct horse!")).refusal);

  auto garbage = check(rp, FakeRequest().header("authorization", "Basic !!!!"));
  REQUIRE(garbage.refusal);
  CHECK(garbage.refusal->effective_status() == 401);
  auto other_scheme = check(rp, FakeRequest().header("authorization", "Bearer abc"));
  REQUIRE(other_scheme.refusal);
  CHECK(other_scheme.refusal->message == "authentication required");
}

// ---- jwt

namespace {
constexpr const char* kSecretEnv = "GW_POLICY_CHAIN_TEST_HMAC";
constexpr const char* kSecret = "0123456789abcdef0123456789abcdef-test-secret";

std::string jwt_spec() {
  return std::string(kPrelude) + R"(
[policies.staff]
kind = "jwt"
public_key_file = "ec.pem"
issuer = "https://idp.example"
audience = "shop-api"
forward_claims = { email = "x-user-email", tenant = "X-Tenant" }
[policies.rsa]
kind = "jwt"
public_key_file = "rsa.pem"
[policies.mixed]
kind = "jwt"
public_key_file = "rsa.pem"
secret_env = "GW_POLICY_CHAIN_TEST_HMAC"
[policies.query-token]
kind = "jwt"
query = "access_token"
public_key_file = "ec.pem"
strip = true
)" + route_toml("staff", "/staff", "\"staff\"") +
         route_toml("rsa", "/rsa", "\"rsa\"") + route_toml("mixed", "/mixed", "\"mixed\"") +
         route_toml("query", "/query", "\"query-token\"");
}

struct JwtWorld {
  TempDir dir;
  std::unique_ptr<Gateway> gw;
  JwtWorld() {
    dir.write("ec.pem", p256_key().pub_pem);
    dir.write("rsa.pem", rsa_key().pub_pem);
    ::setenv(kSecretEnv, kSecret, 1);
    gw = std::make_unique<Gateway>(jwt_spec(), dir.spec_name());
  }
};

FakeRequest bearer(const std::string& t) {
  return FakeRequest().header("authorization", "Bearer " + t);
}
} // namespace

TEST_CASE("jwt accepts a valid token and forwards its claims", "[policy]") {
  JwtWorld w;
  const auto& rp = w.gw->route("staff");
  auto c = check(rp, bearer(token(jwt::Alg::ES256, signer(p256_key()), staff_claims()))
                         .header("x-user-email", "spoof@x"));
  INFO((c.refusal ? c.refusal->message : ""));
  REQUIRE_FALSE(c.refusal);
  CHECK(c.id.authenticated);
  CHECK(c.id.consumer == "alice");
  CHECK(c.id.claims["email"] == "alice@example.com");
  CHECK(c.id.scopes == std::vector<std::string>{"orders:read"});
  CHECK_FALSE(contains(c.edits.drop, "authorization")); // strip defaults to false for tokens
  // Identity headers are removed from the caller's request, then set by the gateway.
  REQUIRE(c.edits.protect != nullptr);
  for (const char* h : {"x-consumer", "x-user-email", "x-tenant"})
    CHECK(contains(*c.edits.protect, h));
  Pairs set = c.edits.set;
  std::sort(set.begin(), set.end());
  CHECK(set ==
        Pairs{{"x-consumer", "alice"}, {"x-tenant", "t1"}, {"x-user-email", "alice@example.com"}});

  auto lower = check(rp, FakeRequest().header("authorization",
                                              "bearer " + token(jwt::Alg::ES256, signer(p256_key()),
                                                                staff_claims())));
  CHECK_FALSE(lower.refusal);

  SECTION("from the query, stripped") {
    auto q = check(w.gw->route("query"),
                   FakeRequest().query("access_token=" +
                                       token(jwt::Alg::ES256, signer(p256_key()), staff_claims())));
    REQUIRE_FALSE(q.refusal);
    CHECK(q.edits.drop_query == std::vector<std::string>{"access_token"});
    CHECK(w.gw->route("query").facts().secret_params == std::vector<std::string>{"access_token"});
  }
}

TEST_CASE("jwt refuses bad tokens with 401 and an invalid_token challenge", "[policy]") {
  JwtWorld w;
  const auto& rp = w.gw->route("staff");
  auto refused = [&](const std::string& t, const std::string& why) {
    INFO(why);
    auto c = check(rp, bearer(t));
    REQUIRE(c.refusal);
    CHECK(c.refusal->effective_status() == 401);
    CHECK(c.refusal->message == "authentication failed: " + why);
    CHECK(has_line(
        c.refusal->headers,
        "www-authenticate: Bearer realm=\"gw\", error=\"invalid_token\", error_description=\"" +
            why + "\""));
    CHECK_FALSE(c.id.authenticated);
    CHECK(c.edits.set.empty());
  };
  auto claims = staff_claims();
  claims["exp"] = kNow - 3600;
  refused(token(jwt::Alg::ES256, signer(p256_key()), claims), "token expired");
  claims = staff_claims();
  claims["aud"] = "other-api";
  refused(token(jwt::Alg::ES256, signer(p256_key()), claims), "wrong audience");
  claims = staff_claims();
  claims["iss"] = "https://evil.example";
  refused(token(jwt::Alg::ES256, signer(p256_key()), claims), "wrong issuer");
  refused(token(jwt::Alg::ES256, signer(other_p256_key()), staff_claims()), "invalid signature");
  refused(jwt::base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
              jwt::base64url_encode(staff_claims().dump()) + ".",
          "unsupported token algorithm");
  refused(jwt::base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
              jwt::base64url_encode(staff_claims().dump()) + "." + jwt::base64url_encode("sig"),
          "unsupported token algorithm");
  refused("not.a.token", "malformed token");
  // A key of the right type is required: an RS256 token is not checked against the EC key.
  refused(token(jwt::Alg::RS256, signer(rsa_key()), staff_claims()), "invalid signature");

  auto none = check(rp, FakeRequest());
  REQUIRE(none.refusal);
  CHECK(none.refusal->message == "authentication required");
  CHECK(has_line(none.refusal->headers, "www-authenticate: Bearer realm=\"gw\""));
  auto basic = check(rp, FakeRequest().header("authorization", "Basic YTpi"));
  REQUIRE(basic.refusal);
  CHECK(basic.refusal->message == "authentication required"); // another scheme is not a bad token
}

TEST_CASE("jwt: an HS256 token keyed with the RSA public key is refused (algorithm confusion)",
          "[policy]") {
  JwtWorld w;
  auto pem_as_secret = jwt::SigningKey::from_secret(rsa_key().pub_pem);
  REQUIRE(pem_as_secret);
  const json claims = {{"sub", "mallory"}, {"exp", kNow + 600}};
  const auto forged = token(jwt::Alg::HS256, *pem_as_secret, claims);

  SECTION("a policy with only the public key does not take HS* at all") {
    auto c = check(w.gw->route("rsa"), bearer(forged));
    REQUIRE(c.refusal);
    CHECK(c.refusal->effective_status() == 401);
    CHECK(c.refusal->message == "authentication failed: algorithm not allowed");
    CHECK_FALSE(check(w.gw->route("rsa"), bearer(token(jwt::Alg::RS256, signer(rsa_key()), claims)))
                    .refusal);
  }
  SECTION("with a secret too, HS* is checked against the secret only") {
    auto c = check(w.gw->route("mixed"), bearer(forged));
    REQUIRE(c.refusal);
    CHECK(c.refusal->message == "authentication failed: invalid signature");
    auto secret = jwt::SigningKey::from_secret(kSecret);
    REQUIRE(secret);
    auto good = check(w.gw->route("mixed"), bearer(token(jwt::Alg::HS256, *secret, claims)));
    CHECK_FALSE(good.refusal);
    CHECK(good.id.consumer == "mallory");
    CHECK_FALSE(
        check(w.gw->route("mixed"), bearer(token(jwt::Alg::RS256, signer(rsa_key()), claims)))
            .refusal);
  }
}

TEST_CASE("jwt keys from a key source: fetched keys verify, an unknown kid asks for a refresh",
          "[policy]") {
  struct Source final : KeySource {
    std::shared_ptr<const std::vector<jwt::Key>> keys_;
    mutable int refreshes = 0;
    std::shared_ptr<const std::vector<jwt::Key>> keys() const override { return keys_; }
    void refresh_soon() const override { ++refreshes; }
  };
  auto source = std::make_shared<Source>();
  auto k = jwt::Key::from_pem(p256_key().pub_pem);
  REQUIRE(k);
  source->keys_ = std::make_shared<const std::vector<jwt::Key>>(std::vector<jwt::Key>{*k});
  std::string asked_url;
  Registry reg;
  reg.key_source = [&](const std::string& url, bool,
                       gw::units::Millis) -> std::shared_ptr<KeySource> {
    asked_url = url;
    return source;
  };
  Gateway gw(std::string(kPrelude) +
                 "[policies.idp]\nkind = \"jwt\"\njwks_url = \"https://idp.example/jwks.json\"\n" +
                 route_toml("r", "/", "\"idp\""),
             "test.toml", reg);
  CHECK(asked_url == "https://idp.example/jwks.json");
  const json claims = {{"sub", "alice"}, {"exp", kNow + 600}};
  CHECK_FALSE(
      check(gw.route("r"), bearer(token(jwt::Alg::ES256, signer(p256_key()), claims))).refusal);
  CHECK(source->refreshes == 0);
  auto rotated = check(gw.route("r"), bearer(token(jwt::Alg::ES256, signer(other_p256_key()),
                                                   claims, {{"kid", "2024-new"}})));
  REQUIRE(rotated.refusal);
  CHECK(rotated.refusal->effective_status() == 401);
  CHECK(source->refreshes == 1);
}

// ---- access

TEST_CASE("access: missing scope, claim or consumer is 403, allowed callers pass", "[policy]") {
  TempDir dir;
  dir.write("ec.pem", p256_key().pub_pem);
  dir.write("keys.txt", key_file_line("acme", "acme-key") + "\n" +
                            key_file_line("mallory", "mallory-key") + "\n" +
                            key_file_line("globex", "globex-key") + "\n");
  Gateway gw(std::string(kPrelude) + R"(
[policies.staff]
kind = "jwt"
public_key_file = "ec.pem"
[policies.keys]
kind = "api_key"
header = "x-api-key"
keys_file = "keys.txt"
[policies.writers]
kind = "access"
scopes = ["orders:write"]
[policies.tenants]
kind = "access"
claims = { tenant = ["t1", "t2"] }
[policies.no-mallory]
kind = "access"
deny_consumers = ["mallory"]
[policies.only-acme]
kind = "access"
consumers = ["acme"]
)" + route_toml("write", "/write", "\"writers\", \"staff\"") +
                 route_toml("tenant", "/tenant", "\"staff\", \"tenants\"") +
                 route_toml("deny", "/deny", "\"keys\", \"no-mallory\"") +
                 route_toml("allow", "/allow", "\"keys\", \"only-acme\""),
             dir.spec_name());
  auto with_claims = [](json extra) {
    json c = {{"sub", "alice"}, {"exp", kNow + 600}};
    c.update(extra);
    return bearer(token(jwt::Alg::ES256, signer(p256_key()), c));
  };
  auto status = [](const Checked& c) { return c.status(); };

  auto read_only = check(gw.route("write"), with_claims({{"scope", "orders:read"}}));
  REQUIRE(read_only.refusal);
  CHECK(read_only.refusal->effective_status() == 403);
  CHECK(read_only.refusal->message == "access denied: the caller lacks a required scope");
  CHECK(status(check(gw.route("write"), with_claims({{"scope", "orders:read orders:write"}}))) ==
        0);
  CHECK(status(check(gw.route("write"), with_claims({{"scp", json::array({"orders:write"})}}))) ==
        0);
  CHECK(status(check(gw.route("write"), FakeRequest())) == 401); // nobody: authenticate first

  auto t3 = check(gw.route("tenant"), with_claims({{"tenant", "t3"}}));
  REQUIRE(t3.refusal);
  CHECK(t3.refusal->effective_status() == 403);
  CHECK(t3.refusal->message == "access denied: the caller lacks claim tenant");
  CHECK(status(check(gw.route("tenant"), with_claims(json::object()))) == 403);
  CHECK(status(check(gw.route("tenant"), with_claims({{"tenant", "t2"}}))) == 0);
  CHECK(status(check(gw.route("tenant"), with_claims({{"tenant", json::array({"x", "t1"})}}))) ==
        0);

  CHECK(status(check(gw.route("deny"), FakeRequest().header("x-api-key", "mallory-key"))) == 403);
  CHECK(status(check(gw.route("deny"), FakeRequest().header("x-api-key", "acme-key"))) == 0);
  CHECK(status(check(gw.route("allow"), FakeRequest().header("x-api-key", "globex-key"))) == 403);
  CHECK(status(check(gw.route("allow"), FakeRequest().header("x-api-key", "acme-key"))) == 0);
}

// ---- any_of

TEST_CASE("any_of passes when one option does, and an empty option lets anonymous callers in",
          "[policy]") {
  TempDir dir;
  dir.write("ec.pem", p256_key().pub_pem);
  dir.write("keys.txt", key_file_line("acme", "acme-key") + "\n");
  Gateway gw(std::string(kPrelude) + R"(
[policies.staff]
kind = "jwt"
public_key_file = "ec.pem"
[policies.keys]
kind = "api_key"
header = "x-api-key"
keys_file = "keys.txt"
[policies.either]
kind = "any_of"
options = [{ policies = ["keys"] }, { policies = ["staff"] }]
[policies.maybe]
kind = "any_of"
options = [{ policies = ["keys"] }, {}]
[policies.admins]
kind = "any_of"
options = [{ policies = ["staff"], scopes = ["admin"] }]
)" + route_toml("either", "/either", "\"either\"") +
                 route_toml("maybe", "/maybe", "\"maybe\"") +
                 route_toml("admins", "/admins", "\"admins\""),
             dir.spec_name());
  const json claims = {{"sub", "alice"}, {"exp", kNow + 600}, {"scope", "read"}};
  const auto alice = token(jwt::Alg::ES256, signer(p256_key()), claims);

  SECTION("the second option succeeds") {
    auto c = check(gw.route("either"), bearer(alice).header("x-api-key", "wrong-key"));
    REQUIRE_FALSE(c.refusal);
    CHECK(c.id.consumer == "alice");
    CHECK(c.id.claims["sub"] == "alice");
    CHECK(c.edits.set == Pairs{{"x-consumer", "alice"}});
  }
  SECTION("the first option succeeds") {
    auto c = check(gw.route("either"), FakeRequest().header("x-api-key", "acme-key"));
    REQUIRE_FALSE(c.refusal);
    CHECK(c.id.consumer == "acme");
    CHECK(contains(c.edits.drop, "x-api-key"));
  }
  SECTION("no option succeeds: 401 with every challenge") {
    auto c = check(gw.route("either"), FakeRequest());
    REQUIRE(c.refusal);
    CHECK(c.refusal->effective_status() == 401);
    CHECK(has_line(c.refusal->headers,
                   "www-authenticate: ApiKey realm=\"gw\", in=\"header\", name=\"x-api-key\""));
    CHECK(has_line(c.refusal->headers, "www-authenticate: Bearer realm=\"gw\""));
  }
  SECTION("anonymous option") {
    auto anon = check(gw.route("maybe"), FakeRequest().header("x-consumer", "admin"));
    REQUIRE_FALSE(anon.refusal);
    CHECK_FALSE(anon.id.authenticated);
    CHECK(anon.edits.drops("x-consumer")); // an anonymous caller still cannot name itself
    auto known = check(gw.route("maybe"), FakeRequest().header("x-api-key", "acme-key"));
    REQUIRE_FALSE(known.refusal);
    CHECK(known.id.consumer == "acme");
  }
  SECTION("an option's scopes: a token without them is 403") {
    auto c = check(gw.route("admins"), bearer(alice));
    REQUIRE(c.refusal);
    CHECK(c.refusal->effective_status() == 403);
    json admin = claims;
    admin["scope"] = "read admin";
    CHECK_FALSE(check(gw.route("admins"), bearer(token(jwt::Alg::ES256, signer(p256_key()), admin)))
                    .refusal);
  }
}

TEST_CASE("a route with two authentication policies names the caller once", "[policy]") {
  TempDir dir;
  dir.write("ec.pem", p256_key().pub_pem);
  dir.write("keys.txt", key_file_line("acme", "acme-key") + "\n");
  Gateway gw(std::string(kPrelude) + R"(
[policies.staff]
kind = "jwt"
public_key_file = "ec.pem"
[policies.keys]
kind = "api_key"
header = "x-api-key"
keys_file = "keys.txt"
)" + route_toml("r", "/", "\"keys\", \"staff\""),
             dir.spec_name());
  const json claims = {{"sub", "alice"}, {"exp", kNow + 600}, {"scope", "read"}};
  auto c = check(
      gw.route("r"),
      bearer(token(jwt::Alg::ES256, signer(p256_key()), claims)).header("x-api-key", "acme-key"));
  REQUIRE_FALSE(c.refusal);
  // The first policy names the caller; the token adds its claims.
  CHECK(c.id.consumer == "acme");
  CHECK(c.id.scopes == std::vector<std::string>{"read"});
  // One x-consumer header upstream, agreeing with the identity: never two different ones.
  CHECK(c.edits.set == Pairs{{"x-consumer", "acme"}});
  CHECK(check(gw.route("r"), FakeRequest().header("x-api-key", "acme-key"))
            .refusal); // both must pass
}

TEST_CASE("a route's chain holds its filters in order and what they are known to do", "[policy]") {
  TempDir dir;
  dir.write("ec.pem", p256_key().pub_pem);
  Gateway gw(std::string(kPrelude) + R"(
[policies.staff]
kind = "jwt"
query = "access_token"
public_key_file = "ec.pem"
forward_claims = { email = "x-user-email" }
[policies.keys]
kind = "api_key"
header = "x-api-key"
query = "api_key"
keys = []
consumer_header = "x-partner"
[policies.either]
kind = "any_of"
options = [{ policies = ["keys"] }, { policies = ["staff"] }]
[policies.browser]
kind = "cors"
origins = ["*"]
[policies.hdrs]
kind = "headers"
request = { set = { x-gw = "1" } }
)" + route_toml("r", "/", "\"hdrs\", \"keys\", \"either\", \"browser\"") +
                 route_toml("bare", "/bare", ""),
             dir.spec_name());
  const auto& rp = gw.route("r");
  CHECK_FALSE(rp.empty());
  CHECK(rp.filters().size() == 4);
  CHECK(rp.response_body() == BodyMode::none);
  const RouteFacts& f = rp.facts();
  CHECK(f.answers_preflight);
  // The route's own api_key and any_of's options, each once.
  CHECK(f.protect == std::vector<std::string>{"x-partner", "x-consumer", "x-user-email"});
  CHECK(f.secret_params == std::vector<std::string>{"api_key", "access_token"});
  CHECK(f.challenges ==
        std::vector<std::string>{"ApiKey realm=\"gw\", in=\"header\", name=\"x-api-key\"",
                                 "Bearer realm=\"gw\""});
  CHECK(f.transform.request.set == Pairs{{"x-gw", "1"}});

  const auto& bare = gw.route("bare");
  CHECK(bare.empty());
  FilterContext ctx;
  bare.begin(ctx);
  CHECK(ctx.facts == &bare.facts());
  CHECK(ctx.edits.protect == nullptr);
  CHECK(ctx.edits.transform == nullptr);
}

TEST_CASE("a policy set refuses unknown kinds and any_of options that do not authenticate",
          "[policy]") {
  BucketRegistry buckets;
  Registry reg;
  reg.buckets = &buckets;
  const std::vector<std::vector<std::uint32_t>> no_routes;
  const std::vector<PolicyDef> unknown = {{"x", "ratelimit", "{}"}};
  auto a = PolicySet::build(unknown, no_routes, reg);
  REQUIRE_FALSE(a);
  CHECK(a.error().code == make_error_code(gw::errc::unsupported));
  CHECK(a.error().message == "policy \"x\": unknown kind ratelimit");

  // A table edited by hand: validate would have refused it.
  const std::vector<PolicyDef> bad_option = {
      {"either", "any_of", R"({"kind":"any_of","options":[{"policies":["hdrs"]}]})"},
      {"hdrs", "headers", R"({"kind":"headers","request":{"set":{"x-a":"1"}}})"}};
  auto b = PolicySet::build(bad_option, no_routes, reg);
  REQUIRE_FALSE(b);
  CHECK(b.error().message.find("hdrs, not an authentication policy") != std::string::npos);

  const std::vector<std::vector<std::uint32_t>> out_of_range = {{2}};
  CHECK_FALSE(PolicySet::build(std::vector<PolicyDef>{}, out_of_range, reg));
}

// acme's API key (keys.txt), or no credentials at all.
constexpr const char* kKeyOrAnonymous = R"(
[policies.keys]
kind = "api_key"
header = "x-api-key"
keys_file = "keys.txt"
[policies.maybe]
kind = "any_of"
options = [{ policies = ["keys"] }, {}]
)";

TEST_CASE("an anonymous caller refused by an access policy gets a challenge", "[policy]") {
  TempDir dir;
  dir.write("keys.txt", key_file_line("acme", "acme-key") + "\n");
  Gateway gw(std::string(kPrelude) + kKeyOrAnonymous + R"(
[policies.only-acme]
kind = "access"
consumers = ["acme"]
)" + route_toml("r", "/", "\"maybe\", \"only-acme\""),
             dir.spec_name());
  auto anon = check(gw.route("r"), FakeRequest());
  REQUIRE(anon.refusal);
  CHECK(anon.refusal->effective_status() == 401);
  // RFC 9110 §15.5.2: a 401 carries WWW-Authenticate, so the client learns how to authenticate.
  CHECK(has_line(anon.refusal->headers,
                 "www-authenticate: ApiKey realm=\"gw\", in=\"header\", name=\"x-api-key\""));
  CHECK_FALSE(check(gw.route("r"), FakeRequest().header("x-api-key", "acme-key")).refusal);
}

// ---- cors

namespace {
std::string cors_spec() {
  return std::string(kPrelude) + R"(
[policies.browser]
kind = "cors"
origins = ["https://app.example.com"]
methods = ["GET", "POST"]
headers = ["Content-Type", "x-api-key"]
expose_headers = ["x-request-id"]
max_age = "1h"
[policies.public]
kind = "cors"
origins = ["*"]
headers = ["*"]
[policies.keys]
kind = "api_key"
header = "x-api-key"
keys = []
)" + route_toml("app", "/app", "\"keys\", \"browser\"") +
         route_toml("open", "/open", "\"public\"") + route_toml("plain", "/plain", "\"keys\"");
}

FakeRequest preflight_req(const std::string& origin, const std::string& method,
                          const std::string& headers = "") {
  FakeRequest r;
  r.method("OPTIONS").header("origin", origin).header("access-control-request-method", method);
  if (!headers.empty()) r.header("access-control-request-headers", headers);
  return r;
}
} // namespace

TEST_CASE("cors answers allowed preflights and refuses the rest", "[policy]") {
  Gateway gw(cors_spec());
  const auto& app = gw.route("app");
  CHECK(app.facts().answers_preflight);
  CHECK_FALSE(gw.route("plain").facts().answers_preflight);

  // The cors filter runs first and answers: the API key policy never sees a preflight.
  auto ok = check(app, preflight_req("https://app.example.com", "POST", "Content-Type, X-Api-Key"));
  REQUIRE(ok.refusal);
  CHECK(ok.status() == 204);
  CHECK(ok.refusal->body == std::string()); // its own, empty body: no JSON error body
  CHECK(ok.refusal->content_type.empty());
  INFO(text_of(ok.refusal->headers));
  CHECK(has_line(ok.refusal->headers, "access-control-allow-origin: https://app.example.com"));
  CHECK(has_line(ok.refusal->headers, "vary: origin"));
  CHECK(has_line(ok.refusal->headers, "access-control-allow-methods: GET, POST"));
  CHECK(has_line(ok.refusal->headers, "access-control-allow-headers: Content-Type, X-Api-Key"));
  CHECK(has_line(ok.refusal->headers, "access-control-max-age: 3600"));
  CHECK(text_of(ok.refusal->headers).find("access-control-allow-credentials") == std::string::npos);
  CHECK(ok.edits.response_add.empty());

  for (const auto& req : {preflight_req("https://evil.example", "POST"),
                          preflight_req("https://app.example.com", "DELETE"),
                          preflight_req("https://app.example.com", "POST", "content-type, x-admin"),
                          preflight_req("https://app.example.com.evil.example", "GET")}) {
    auto r = check(app, req);
    REQUIRE(r.refusal);
    CHECK(r.status() == 403);
    CHECK(r.refusal->kind == gw::wire::ErrorKind::forbidden);
    CHECK(text_of(r.sent()).find("access-control-allow-origin") == std::string::npos);
  }
  // Without Origin and Access-Control-Request-Method an OPTIONS is no preflight: the route's
  // other policies judge it.
  auto plain_options = check(app, FakeRequest().method("OPTIONS"));
  CHECK(plain_options.status() == 401);

  auto any = check(gw.route("open"), preflight_req("https://whoever.example", "GET", "x-anything"));
  CHECK(any.status() == 204);
  CHECK(has_line(any.refusal->headers, "access-control-allow-origin: *"));
  CHECK(has_line(any.refusal->headers, "access-control-allow-headers: x-anything"));
}

TEST_CASE("cors headers go on actual responses, refusals included, for allowed origins only",
          "[policy]") {
  Gateway gw(cors_spec());
  auto refused = check(gw.route("app"), FakeRequest().header("origin", "https://app.example.com"));
  REQUIRE(refused.refusal);
  CHECK(refused.status() == 401);
  // The browser may read the 401 only with the CORS headers on it: the proxy adds what the cors
  // filter put in response_add to the API key policy's reply.
  CHECK(has_line(refused.sent(), "access-control-allow-origin: https://app.example.com"));
  CHECK(has_line(refused.sent(), "access-control-expose-headers: x-request-id"));
  CHECK(has_line(refused.sent(),
                 "www-authenticate: ApiKey realm=\"gw\", in=\"header\", name=\"x-api-key\""));
  // Once, not twice: the refusing filter does not copy them itself.
  CHECK(text_of(refused.refusal->headers).find("access-control-allow-origin") == std::string::npos);

  auto evil = check(gw.route("app"), FakeRequest().header("origin", "https://evil.example"));
  REQUIRE(evil.refusal);
  CHECK(text_of(evil.sent()).find("access-control-allow-origin") == std::string::npos);

  auto open = check(gw.route("open"), FakeRequest().header("origin", "https://whoever.example"));
  REQUIRE_FALSE(open.refusal);
  CHECK(has_line(open.edits.response_add, "access-control-allow-origin: *"));
}

// ---- rate limits and transforms through the chain

TEST_CASE("rate limits: keys per form, 429 with Retry-After and RateLimit fields", "[policy]") {
  SECTION("the keys a request counts against, in the route's order") {
    // Redis-backed, so that the takes show the keys.
    Gateway gw(std::string(kPrelude) + R"(
[policies.per-tenant]
kind = "rate_limit"
rate = "2/s"
key = "header:X-Tenant"
redis = "127.0.0.1:6379"
[policies.slow]
kind = "rate_limit"
rate = "1/m"
key = "route"
redis = "127.0.0.1:6379"
[policies.shared]
kind = "rate_limit"
rate = "10/s"
store = "redis"
redis = "127.0.0.1:6379"
redis_timeout = "250ms"
)" + route_toml("r", "/", "\"per-tenant\", \"slow\", \"shared\""));
    const auto& rp = gw.route("r");
    REQUIRE(rp.filters().size() == 3);

    auto c = check(rp, FakeRequest().header("x-tenant", "t1").ip("198.51.100.7"));
    REQUIRE_FALSE(c.refusal);
    REQUIRE(c.takes.size() == 3);
    // Limiters follow the route's order: per-tenant, slow, shared.
    CHECK(c.takes[0].key == "gw:rl:per-tenant:h:t1");
    CHECK(c.takes[0].interval_us == 500'000);
    CHECK(c.takes[0].burst == 2);
    CHECK(c.takes[1].key == "gw:rl:slow:r");
    CHECK(c.takes[2].key == "gw:rl:shared:ip:198.51.100.7");
    CHECK(c.takes[2].server == "127.0.0.1:6379/250");
    CHECK(c.takes[2].host == "127.0.0.1");
    CHECK(c.takes[2].port == 6379);
    CHECK(c.takes[2].timeout.count() == 250);
    CHECK(has_line(c.edits.response_add, "ratelimit: \"shared\";r=9;t=1"));
    auto no_header = check(rp, FakeRequest().ip("198.51.100.7"));
    CHECK(no_header.takes.at(0).key == "gw:rl:per-tenant:ip:198.51.100.7");
    // A caller cannot name an address's bucket through the header.
    CHECK(check(rp, FakeRequest().header("x-tenant", "ip:198.51.100.7")).takes.at(0).key !=
          no_header.takes.at(0).key);

    // Redis refuses the second: 429 with its Retry-After, and the first one's fields too.
    auto refused = check(rp, FakeRequest().header("x-tenant", "t1"), "r", [](const RedisTake& t) {
      RedisReply r = redis_allows(t);
      if (t.key.starts_with("gw:rl:slow:")) {
        r.allowed = false;
        r.remaining = 0;
        r.retry_after_ms = 1500;
        r.reset_ms = 60'000;
      }
      return r;
    });
    REQUIRE(refused.refusal);
    CHECK(refused.status() == 429);
    CHECK(refused.takes.size() == 2); // the third is not counted
    CHECK(has_line(refused.refusal->headers, "retry-after: 2"));
    CHECK(has_line(refused.refusal->headers, "ratelimit: \"slow\";r=0;t=60"));
    CHECK(has_line(refused.sent(), "ratelimit: \"per-tenant\";r=9;t=1"));
  }
  SECTION("local buckets") {
    Gateway gw(std::string(kPrelude) + R"(
[policies.per-tenant]
kind = "rate_limit"
rate = "2/s"
key = "header:X-Tenant"
[policies.slow]
kind = "rate_limit"
rate = "1/m"
key = "route"
)" + route_toml("r", "/", "\"per-tenant\"") +
               route_toml("s", "/s", "\"slow\""));
    const auto& rp = gw.route("r");
    auto tenant = [&](const std::string& t) {
      return check(rp, FakeRequest().header("x-tenant", t));
    };
    auto first = tenant("t1");
    REQUIRE_FALSE(first.refusal);
    CHECK(first.takes.empty()); // counted inline
    CHECK(has_line(first.edits.response_add, "ratelimit-policy: \"per-tenant\";q=2;w=1"));
    CHECK(has_line(first.edits.response_add, "ratelimit: \"per-tenant\";r=1;t=1"));
    CHECK_FALSE(tenant("t1").refusal);
    auto refused = tenant("t1");
    REQUIRE(refused.refusal);
    CHECK(refused.status() == 429);
    CHECK(refused.refusal->kind == gw::wire::ErrorKind::rate_limited);
    CHECK(refused.refusal->message == "rate limit per-tenant exceeded");
    CHECK(has_line(refused.refusal->headers, "retry-after: 1"));
    CHECK(has_line(refused.refusal->headers, "ratelimit: \"per-tenant\";r=0;t=1"));
    CHECK_FALSE(tenant("t2").refusal); // another tenant, another bucket

    const auto& slow = gw.route("s");
    REQUIRE_FALSE(check(slow, FakeRequest(), "s").refusal);
    fake_now_ns = kT + 15'000 * kMs;
    auto slow_refused = check(slow, FakeRequest(), "s");
    REQUIRE(slow_refused.refusal);
    CHECK(has_line(slow_refused.refusal->headers, "retry-after: 45"));
    CHECK(has_line(slow_refused.refusal->headers, "ratelimit-policy: \"slow\";q=1;w=60"));
  }
}

TEST_CASE("a rate limit whose Redis fails lets requests through or refuses them, as configured",
          "[policy]") {
  Gateway gw(std::string(kPrelude) + R"(
[policies.soft]
kind = "rate_limit"
rate = "10/s"
redis = "127.0.0.1:6379"
[policies.hard]
kind = "rate_limit"
rate = "10/s"
redis = "127.0.0.1:6379"
on_redis_error = "deny"
)" + route_toml("soft", "/soft", "\"soft\"") +
             route_toml("hard", "/hard", "\"hard\""));
  const FakeRedis down = [](const RedisTake&) {
    RedisReply r;
    r.error = "redis 127.0.0.1:6379: timed out";
    return r;
  };
  auto open = check(gw.route("soft"), FakeRequest(), "soft", down);
  CHECK_FALSE(open.refusal);
  CHECK(open.edits.response_add.empty()); // nothing was counted
  CHECK(open.counters.rate_limit_store_errors == 1);
  REQUIRE(open.notes.size() == 1);
  CHECK(open.notes[0].first == "rate limit soft: redis 127.0.0.1:6379: timed out (failing open)");
  CHECK(open.notes[0].second); // at most a line a second

  auto closed = check(gw.route("hard"), FakeRequest(), "hard", down);
  REQUIRE(closed.refusal);
  CHECK(closed.status() == 503);
  CHECK(closed.refusal->kind == gw::wire::ErrorKind::policy_unavailable);
  CHECK(closed.refusal->message == "rate limit hard cannot be checked");
  CHECK(closed.counters.rate_limit_store_errors == 1);
  REQUIRE(closed.notes.size() == 1);
  CHECK(closed.notes[0].first.ends_with("(failing closed)"));
}

TEST_CASE("a consumer-keyed rate limit counts anonymous callers by address, not in one bucket",
          "[policy]") {
  TempDir dir;
  dir.write("keys.txt", key_file_line("acme", "acme-key") + "\n");
  Gateway gw(std::string(kPrelude) + kKeyOrAnonymous + R"(
[policies.per-consumer]
kind = "rate_limit"
rate = "10/m"
key = "consumer"
redis = "127.0.0.1:6379"
)" + route_toml("r", "/", "\"maybe\", \"per-consumer\""),
             dir.spec_name());
  const auto& rp = gw.route("r");
  auto a = check(rp, FakeRequest().ip("198.51.100.1"));
  auto b = check(rp, FakeRequest().ip("198.51.100.2"));
  auto known = check(rp, FakeRequest().ip("198.51.100.1").header("x-api-key", "acme-key"));
  REQUIRE(a.takes.size() == 1);
  REQUIRE(b.takes.size() == 1);
  REQUIRE(known.takes.size() == 1);
  CHECK(known.takes[0].key == "gw:rl:per-consumer:c:acme");
  // One anonymous caller must not use up every anonymous caller's requests.
  CHECK(a.takes[0].key != b.takes[0].key);
  CHECK(a.takes[0].key == "gw:rl:per-consumer:ip:198.51.100.1");
}

TEST_CASE("rate limit buckets survive a rebuild of an unchanged policy only", "[policy]") {
  BucketRegistry buckets;
  Registry reg;
  reg.buckets = &buckets;
  auto spec = [](const std::string& rate) {
    return std::string(kPrelude) + "[policies.limit]\nkind = \"rate_limit\"\nrate = \"" + rate +
           "\"\n" + route_toml("r", "/", "\"limit\"");
  };
  Gateway first(spec("2/m"), "test.toml", reg);
  CHECK_FALSE(check(first.route("r"), FakeRequest()).refusal);
  CHECK_FALSE(check(first.route("r"), FakeRequest()).refusal);
  CHECK(check(first.route("r"), FakeRequest()).status() == 429);

  Gateway reloaded(spec("2/m"), "test.toml", reg);
  CHECK(check(reloaded.route("r"), FakeRequest()).status() == 429); // the same bucket

  Gateway changed(spec("3/m"), "test.toml", reg);
  CHECK_FALSE(check(changed.route("r"), FakeRequest()).refusal); // a fresh one
}

TEST_CASE("a local rate limit needs the daemon's bucket registry", "[policy]") {
  auto b = build_spec(std::string(kPrelude) +
                      "[policies.limit]\nkind = \"rate_limit\"\nrate = \"2/m\"\n" +
                      route_toml("r", "/", "\"limit\""));
  REQUIRE(b.config);
  auto s = build_policies(*b.config, Registry{});
  REQUIRE_FALSE(s);
  CHECK(s.error().message.find("limit") != std::string::npos);
}

TEST_CASE("headers policies become edits of the request, the query and the response", "[policy]") {
  Gateway gw(std::string(kPrelude) + R"(
[policies.hdrs]
kind = "headers"
request = { set = { X-Gateway = "gw" }, add = { Via-Note = "a" }, remove = ["X-Debug"], rename = { X-Old = "X-New" } }
response = { remove = ["Server"] }
query = { set = { v = "2" }, remove = ["debug"] }
)" + route_toml("r", "/", "\"hdrs\""));
  const auto& rp = gw.route("r");
  CHECK_FALSE(rp.empty());
  auto c = check(rp, FakeRequest());
  REQUIRE_FALSE(c.refusal);
  REQUIRE(c.edits.transform != nullptr); // composed once per generation, not per request
  const Transform& t = *c.edits.transform;
  CHECK(t.request.set == Pairs{{"x-gateway", "gw"}});
  CHECK(t.request.add == Pairs{{"via-note", "a"}});
  CHECK(t.request.remove == std::vector<std::string>{"x-debug"});
  CHECK(t.request.rename == Pairs{{"x-old", "x-new"}});
  CHECK(t.query.set == Pairs{{"v", "2"}});
  CHECK(t.query.remove == std::vector<std::string>{"debug"});
  CHECK(t.response.remove == std::vector<std::string>{"server"});
  CHECK(c.edits.query_changes());
  CHECK(c.edits.drops("X-Gateway")); // header names in any case
  CHECK(c.edits.drops("x-debug"));
  CHECK_FALSE(c.edits.drops("x-other"));
  CHECK(c.edits.drops_param("debug"));
  CHECK(c.edits.drops_param("v"));
  CHECK_FALSE(c.edits.drops_param("Debug")); // parameter names exactly
  CHECK(renamed(t.request, "X-OLD") != nullptr);
  CHECK(*renamed(t.request, "X-OLD") == "x-new");
  CHECK(replaces(t.response, "Server"));
  c.edits.clear();
  CHECK_FALSE(c.edits.query_changes());
  CHECK(c.edits.transform == nullptr);
  CHECK_FALSE(c.edits.drops("x-gateway"));
}

TEST_CASE("a later headers policy overrides what an earlier one set", "[policy]") {
  Gateway gw(std::string(kPrelude) + R"(
[policies.site]
kind = "headers"
request = { set = { X-Env = "prod", X-Trace = "on" }, add = { X-Tag = "a" } }
query = { set = { v = "1" } }
[policies.route-only]
kind = "headers"
request = { remove = ["X-Trace", "X-Tag"], set = { X-Env = "canary" } }
query = { set = { v = "2" } }
)" + route_toml("r", "/", "\"site\", \"route-only\""));
  auto c = check(gw.route("r"), FakeRequest());
  REQUIRE_FALSE(c.refusal);
  REQUIRE(c.edits.transform != nullptr);
  CHECK(c.edits.transform->request.set == Pairs{{"x-env", "canary"}});
  CHECK(c.edits.transform->request.add.empty());
  CHECK(c.edits.transform->request.remove == std::vector<std::string>{"x-trace", "x-tag"});
  CHECK(c.edits.transform->query.set == Pairs{{"v", "2"}});
}
