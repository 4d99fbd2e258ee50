// kind = "ext_auth" through its KindInfo row: the settings reader's diagnostics, the call the
// filter asks for, and what it makes of the service's answers (no sockets: the proxy performs
// calls; the HTTP client has its own tests).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/text.hpp"
#include "gw/policy/kinds.hpp"
#include "support/spec_builder.hpp"

namespace gw::policy {
extern const KindInfo kExtAuthKind; // ext_auth.cpp; the kinds table lists it
}

using namespace gw::policy;
using json = nlohmann::json;

namespace {

const KindInfo& kind() {
  return kExtAuthKind;
}

struct Compiled {
  gw::Diagnostics diags;
  std::optional<json> canonical;
  const gw::Diagnostic* find(const std::string& code) const {
    return gwtest::find_diagnostic(diags, code);
  }
  /// The first diagnostic whose message contains `text`.
  const gw::Diagnostic* with(const std::string& text) const {
    for (const auto& d : diags)
      if (d.message.find(text) != std::string::npos) return &d;
    return nullptr;
  }
  std::string dump() const { return gwtest::dump_diagnostics(diags); }
};

/// Settings compiled as `[policies.auth]` written at spec.toml:10:1, its keys on the lines after
/// it in key order (the order nlohmann::json keeps), each value at column `key length + 4`.
Compiled compile_settings(const json& settings) {
  static std::map<std::string, gw::SourceLoc> locs;
  locs.clear();
  std::uint32_t line = 11;
  for (auto it = settings.begin(); settings.is_object() && it != settings.end(); ++it)
    locs["/" + it.key()] =
        gw::SourceLoc{"spec.toml", line++, static_cast<std::uint32_t>(it.key().size() + 4)};
  Context ctx;
  ctx.policy = "auth";
  ctx.loc = gw::SourceLoc{"spec.toml", 10, 1};
  ctx.locs = &locs;
  Compiled c;
  c.canonical = kind().compile(settings, ctx, c.diags);
  return c;
}

std::shared_ptr<const Filter> build_filter(const json& settings) {
  auto c = compile_settings(settings);
  INFO(c.dump());
  REQUIRE(c.canonical);
  const std::string canonical = c.canonical->dump();
  BuildContext b;
  b.policy = "auth";
  b.settings = canonical;
  auto f = kind().build(b);
  INFO((f ? std::string() : f.error().message));
  REQUIRE(f);
  return *f;
}

class FakeRequest final : public RequestView {
public:
  FakeRequest& header(std::string name, std::string value) {
    headers_.emplace_back(std::move(name), std::move(value)); // as received: any case
    return *this;
  }
  FakeRequest& query(std::string q) {
    query_ = std::move(q);
    return *this;
  }
  std::string_view method() const noexcept override { return "DELETE"; }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [n, v] : headers_)
      if (gw::text::iequals(n, name)) return std::string_view(v);
    return std::nullopt;
  }
  void for_each_header(
      const std::function<void(std::string_view, std::string_view)>& fn) const override {
    for (const auto& [n, v] : headers_)
      fn(n, v);
  }
  std::string_view path() const noexcept override { return "/orders/7"; }
  std::string_view query() const noexcept override { return query_; }
  std::string_view host() const noexcept override { return "api.test"; }
  std::string_view client_ip() const noexcept override { return "192.0.2.10"; }
  std::string_view request_id() const noexcept override { return "rid-1"; }

private:
  std::string query_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

/// One request through the filter: on_request, then resume with `reply`.
struct Run {
  FakeRequest req;
  FilterCounters counters;
  FilterContext ctx;
  Run() {
    ctx.request = &req;
    ctx.counters = &counters;
  }
  HttpCall start(const Filter& f) {
    auto v = f.on_request(ctx);
    REQUIRE(v.type() == Verdict::Type::call);
    REQUIRE(std::holds_alternative<HttpCall>(v.call()));
    return std::get<HttpCall>(v.call());
  }
  Verdict finish(const Filter& f, HttpReply reply) {
    (void)start(f);
    return f.resume(ctx, IoResult(std::move(reply)));
  }
};

const std::string* find_header(const HeaderList& h, std::string_view name) {
  for (const auto& [n, v] : h)
    if (n == name) return &v;
  return nullptr;
}

std::vector<std::string> values_of(const HeaderList& h, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [n, v] : h)
    if (n == name) out.push_back(v);
  return out;
}

HttpReply answer(unsigned status, HeaderList headers = {}, std::string body = {}) {
  HttpReply r;
  r.ok = true;
  r.status = status;
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

HttpReply transport_error(bool timed_out) {
  HttpReply r;
  r.timed_out = timed_out;
  r.error = timed_out ? "http 127.0.0.1:9000: timed out after 1s (waiting for the answer)"
                      : "http 127.0.0.1:9000: connecting: Connection refused";
  return r;
}

const json kBase = {{"kind", "ext_auth"}, {"url", "http://127.0.0.1:9000/auth"}};

json with(json extra) {
  json j = kBase;
  j.update(extra);
  return j;
}

} // namespace

TEST_CASE("ext_auth: the row names the kind, its phase and the schema of its keys", "[ext_auth]") {
  CHECK(kind().name == "ext_auth");
  CHECK(kind().phase == Phase::authenticate);
  CHECK(kind().authenticates);
  CHECK_FALSE(kind().composite);
  const json schema = json::parse(kind().schema);
  std::vector<std::string> keys;
  for (const auto& [k, v] : schema.items()) {
    keys.push_back(k);
    INFO(k);
    CHECK(v.contains("description"));
    CHECK(v.contains("type"));
  }
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"client_headers", "consumer_header", "max_body",
                                         "on_error", "request_headers", "timeout",
                                         "upstream_headers", "url"});
  // Every key the schema declares is one the reader takes.
  json all = with({{"request_headers", {"authorization"}},
                   {"upstream_headers", {"x-user"}},
                   {"client_headers", {"www-authenticate"}},
                   {"consumer_header", "x-user"},
                   {"timeout", "250ms"},
                   {"on_error", "allow"},
                   {"max_body", "1KiB"}});
  auto c = compile_settings(all);
  INFO(c.dump());
  CHECK(c.canonical);
  CHECK(c.diags.begin() == c.diags.end());
}

TEST_CASE("ext_auth: url must be plain http to an IP address, with file:line:col diagnostics",
          "[ext_auth]") {
  SECTION("missing") {
    auto c = compile_settings({{"kind", "ext_auth"}});
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("spec.missing-key");
    REQUIRE(d);
    CHECK(d->message.find("has no url") != std::string::npos);
    CHECK(d->line == 10); // the policy's table: the key is not there
  }
  SECTION("a host name: no DNS on the request path") {
    auto c = compile_settings({{"kind", "ext_auth"}, {"url", "http://auth.internal:9000/check"}});
    CHECK_FALSE(c.canonical);
    const auto* d = c.with("not a host name");
    REQUIRE(d);
    CHECK(d->code == "policy.invalid");
    CHECK(d->message.find("no DNS lookups on the request path") != std::string::npos);
    CHECK(d->to_string().starts_with("spec.toml:12:7: error[policy.invalid]: policy \"auth\": "
                                     "url \"http://auth.internal:9000/check\""));
    CHECK(d->pointer == "/url");
  }
  SECTION("https is refused for now") {
    auto c = compile_settings({{"kind", "ext_auth"}, {"url", "https://127.0.0.1/auth"}});
    const auto* d = c.with("https is not supported yet");
    REQUIRE(d);
    CHECK(d->line == 12);
  }
  SECTION("other malformed urls") {
    for (const char* bad : {"ftp://127.0.0.1/x", "127.0.0.1:9000/auth", "http://127.0.0.1:0/",
                            "http://127.0.0.1:70000/", "http://127.0.0.1:/", "http://[::1/",
                            "http://user:pw@127.0.0.1/", "http://127.0.0.1/a b",
                            "http://127.0.0.1/a#frag", "http:///auth", "http://::1/x"}) {
      INFO(bad);
      auto c = compile_settings({{"kind", "ext_auth"}, {"url", bad}});
      CHECK_FALSE(c.canonical);
      CHECK(c.find("policy.invalid"));
    }
    auto c = compile_settings({{"kind", "ext_auth"}, {"url", 9000}});
    CHECK(c.with("url must be a string"));
  }
  SECTION("accepted forms") {
    for (const char* good : {"http://127.0.0.1:9000/auth", "http://10.0.0.5/", "http://10.0.0.5",
                             "http://[::1]:9000/v1/check?x=1", "http://[2001:db8::5]/"}) {
      INFO(good);
      auto c = compile_settings({{"kind", "ext_auth"}, {"url", good}});
      INFO(c.dump());
      CHECK(c.canonical);
    }
  }
}

TEST_CASE("ext_auth: header lists, timeout, on_error and max_body are checked", "[ext_auth]") {
  SECTION("unknown keys are reported with a did-you-mean") {
    auto c = compile_settings(with({{"upstream_header", {"x-user"}}}));
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("spec.unknown-key");
    REQUIRE(d);
    CHECK(d->message == "policy \"auth\": unknown setting \"upstream_header\" for kind "
                        "\"ext_auth\"");
    CHECK(d->hint == "did you mean \"upstream_headers\"?");
    CHECK(d->line == 12); // kind, upstream_header, url
  }
  SECTION("names must be header names") {
    auto c = compile_settings(with({{"request_headers", {"bad name"}}}));
    CHECK(c.with("\"bad name\" is not a header name"));
    CHECK(compile_settings(with({{"upstream_headers", 7}})).with("must be a string or an array"));
    CHECK(compile_settings(with({{"consumer_header", "x y"}})).with("is not a header name"));
  }
  SECTION("the proxy's own fields are refused where they would be sent or set") {
    CHECK(compile_settings(with({{"request_headers", {"Host"}}})).with("x-forwarded-host"));
    CHECK(
        compile_settings(with({{"request_headers", {"connection"}}})).with("managed by the proxy"));
    CHECK(compile_settings(with({{"upstream_headers", {"content-length"}}}))
              .with("managed by the proxy"));
    CHECK(compile_settings(with({{"upstream_headers", {"Transfer-Encoding"}}}))
              .with("managed by the proxy"));
    CHECK(
        compile_settings(with({{"client_headers", {"connection"}}})).with("managed by the proxy"));
    CHECK(compile_settings(with({{"consumer_header", "host"}})).with("managed by the proxy"));
  }
  SECTION("the always-sent fields cannot be listed") {
    auto c = compile_settings(with({{"request_headers", {"authorization", "X-Forwarded-For"}}}));
    CHECK(c.with("\"x-forwarded-for\" is always sent"));
  }
  SECTION("timeout") {
    CHECK(compile_settings(with({{"timeout", "0s"}})).with("timeout must be more than 0"));
    CHECK(compile_settings(with({{"timeout", "2m"}})).with("at most 1m"));
    CHECK(compile_settings(with({{"timeout", "soon"}})).find("policy.invalid"));
    CHECK(compile_settings(with({{"timeout", "1.5s"}})).canonical);
  }
  SECTION("on_error") {
    const auto c = compile_settings(with({{"on_error", "open"}}));
    const auto* d = c.with("on_error must be");
    REQUIRE(d);
    CHECK(d->line == 12); // kind, on_error, url
    CHECK(d->col == 12);
    CHECK(compile_settings(with({{"on_error", "deny"}})).canonical);
  }
  SECTION("max_body: a size or bytes, up to 16MiB") {
    CHECK(compile_settings(with({{"max_body", "1MiB"}})).canonical);
    CHECK(compile_settings(with({{"max_body", 4096}})).canonical);
    CHECK(compile_settings(with({{"max_body", 0}})).with("max_body must be a size"));
    CHECK(compile_settings(with({{"max_body", "32MiB"}})).with("max_body must be a size"));
    CHECK(compile_settings(with({{"max_body", "lots"}})).with("max_body must be a size"));
  }
  SECTION("every problem is reported, not just the first") {
    auto c = compile_settings(
        {{"kind", "ext_auth"}, {"url", "http://auth/"}, {"timeout", "0s"}, {"on_error", "maybe"}});
    CHECK(c.diags.error_count() == 3);
  }
  SECTION("settings must be a table") {
    CHECK(compile_settings(json::array()).with("settings must be a table"));
  }
}

TEST_CASE("ext_auth: on_request asks for a GET to the service with the chosen headers",
          "[ext_auth]") {
  const auto f = build_filter(with({{"url", "http://[::1]:9000/v1/check?tenant=a"},
                                    {"request_headers", {"Authorization", "cookie"}},
                                    {"upstream_headers", {"x-user"}},
                                    {"timeout", "250ms"},
                                    {"max_body", "1KiB"}}));
  Run run;
  run.req.header("Authorization", "Bearer abc")
      .header("Cookie", "a=1")
      .header("Cookie", "b=2")
      .header("X-Secret", "not for the service")
      .header("X-Forwarded-For", "203.0.113.99")
      .header("X-User", "forged")
      .query("page=2");
  const HttpCall call = run.start(*f);
  CHECK(call.host == "::1");
  CHECK(call.port == 9000);
  CHECK(call.authority == "[::1]:9000");
  CHECK(call.method == "GET");
  CHECK(call.target == "/v1/check?tenant=a");
  CHECK(call.body.empty());
  CHECK(call.timeout == std::chrono::milliseconds(250));
  CHECK(call.max_body == 1024);
  const auto& h = call.headers;
  CHECK(values_of(h, "x-forwarded-method") == std::vector<std::string>{"DELETE"});
  CHECK(values_of(h, "x-forwarded-uri") == std::vector<std::string>{"/orders/7?page=2"});
  CHECK(values_of(h, "x-forwarded-host") == std::vector<std::string>{"api.test"});
  // The gateway's idea of the client, never the client's own claim.
  CHECK(values_of(h, "x-forwarded-for") == std::vector<std::string>{"192.0.2.10"});
  CHECK(values_of(h, "x-request-id") == std::vector<std::string>{"rid-1"});
  CHECK(values_of(h, "authorization") == std::vector<std::string>{"Bearer abc"});
  CHECK(values_of(h, "cookie") == std::vector<std::string>{"a=1", "b=2"});
  CHECK_FALSE(find_header(h, "x-secret"));
  CHECK_FALSE(find_header(h, "x-user"));
  CHECK(h.size() == 8);
  // The client's copy of what the service asserts is dropped whatever the answer.
  CHECK(run.ctx.edits.drops("X-User"));
  CHECK_FALSE(run.ctx.edits.drops("authorization"));

  SECTION("without a path the target is /; without a query the uri is the path") {
    const auto g = build_filter(with({{"url", "http://127.0.0.1:9000"}}));
    Run r2;
    const HttpCall c2 = r2.start(*g);
    CHECK(c2.port == 9000);
    CHECK(c2.target == "/");
    CHECK(values_of(c2.headers, "x-forwarded-uri") == std::vector<std::string>{"/orders/7"});
    CHECK(c2.timeout == std::chrono::milliseconds(1000));
    CHECK(c2.max_body == 64 * 1024);
    CHECK(c2.headers.size() == 5);
  }
}

TEST_CASE("ext_auth: a 2xx answer lets the request through with the service's headers",
          "[ext_auth]") {
  const auto f = build_filter(with(
      {{"upstream_headers", {"X-User", "x-roles", "x-tenant"}}, {"consumer_header", "x-user"}}));
  Run run;
  run.req.header("X-User", "forged").header("x-tenant", "forged-too");
  auto v = run.finish(*f, answer(200,
                                 {{"x-user", "alice"},
                                  {"x-roles", "admin"},
                                  {"x-roles", "ops"},
                                  {"x-other", "not copied"},
                                  {"content-type", "text/plain"}},
                                 "ok"));
  CHECK(v.type() == Verdict::Type::proceed);
  const auto& set = run.ctx.edits.set;
  REQUIRE(find_header(set, "x-user"));
  CHECK(*find_header(set, "x-user") == "alice");
  CHECK(*find_header(set, "x-roles") == "admin, ops");
  CHECK_FALSE(find_header(set, "x-other"));
  // Not in the answer: not set, and the client's forged copy is still not forwarded.
  CHECK_FALSE(find_header(set, "x-tenant"));
  CHECK(run.ctx.edits.drops("x-tenant"));
  CHECK(run.ctx.edits.drops("x-user"));
  CHECK(run.ctx.identity.authenticated);
  CHECK(run.ctx.identity.consumer == "alice");
  CHECK(run.counters.ext_auth_errors == 0);
  CHECK(run.ctx.notes.empty());

  SECTION("any 2xx allows") {
    Run r2;
    CHECK(r2.finish(*f, answer(204)).type() == Verdict::Type::proceed);
    CHECK(r2.ctx.identity.authenticated);
    CHECK(r2.ctx.identity.consumer.empty());
  }
  SECTION("contribute protects the copied fields on every request of the route") {
    RouteFacts facts;
    facts.protect = {"x-consumer"};
    f->contribute(facts);
    CHECK(facts.protect == std::vector<std::string>{"x-consumer", "x-user", "x-roles", "x-tenant"});
  }
  SECTION("a value with control characters is the service's failure") {
    Run r3;
    auto v3 = r3.finish(*f, answer(200, {{"x-user", "ali\x01"
                                                    "ce"}}));
    REQUIRE(v3.type() == Verdict::Type::reply);
    CHECK(v3.reply().effective_status() == 503);
    CHECK(r3.counters.ext_auth_errors == 1);
    CHECK_FALSE(find_header(r3.ctx.edits.set, "x-user"));
  }
}

TEST_CASE("ext_auth: any other answer goes to the client with its status, headers and body",
          "[ext_auth]") {
  const HeaderList denial_headers = {{"content-type", "application/json"},
                                     {"www-authenticate", "Bearer realm=\"x\""},
                                     {"set-cookie", "s=1"},
                                     {"content-length", "17"},
                                     {"connection", "keep-alive"},
                                     {"x-upstream-only", "x"}};
  SECTION("default: every field but framing and hop-by-hop ones") {
    const auto f = build_filter(with({{"upstream_headers", {"x-user"}}}));
    Run run;
    auto v = run.finish(*f, answer(403, denial_headers, R"({"error":"nope"})"));
    REQUIRE(v.type() == Verdict::Type::reply);
    const LocalReply& r = v.reply();
    CHECK(r.effective_status() == 403);
    CHECK(r.kind == gw::wire::ErrorKind::forbidden);
    REQUIRE(r.body);
    CHECK(*r.body == R"({"error":"nope"})");
    CHECK(r.content_type == "application/json");
    CHECK(r.headers == HeaderList{{"www-authenticate", "Bearer realm=\"x\""},
                                  {"set-cookie", "s=1"},
                                  {"x-upstream-only", "x"}});
    CHECK(r.detail == "ext_auth \"auth\": HTTP 403 from 127.0.0.1:9000");
    CHECK(run.ctx.edits.set.empty());
    CHECK_FALSE(run.ctx.identity.authenticated);
    CHECK(run.counters.ext_auth_errors == 0);
  }
  SECTION("client_headers chooses") {
    const auto f = build_filter(with({{"client_headers", {"WWW-Authenticate"}}}));
    Run run;
    auto v = run.finish(*f, answer(401, denial_headers, "who are you?"));
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 401);
    CHECK(v.reply().kind == gw::wire::ErrorKind::unauthorized);
    CHECK(v.reply().headers == HeaderList{{"www-authenticate", "Bearer realm=\"x\""}});
    CHECK(v.reply().content_type == "application/json");
    CHECK(*v.reply().body == "who are you?");
  }
  SECTION("a redirect to a login page passes as it is, an empty body too") {
    const auto f = build_filter(kBase);
    Run run;
    auto v = run.finish(*f, answer(302, {{"location", "https://login.test/?next=%2F"}}));
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 302);
    CHECK(v.reply().headers == HeaderList{{"location", "https://login.test/?next=%2F"}});
    REQUIRE(v.reply().body);
    CHECK(v.reply().body->empty());
    CHECK(v.reply().content_type.empty());
  }
  SECTION("a 5xx from the service is its answer too, not a transport error") {
    const auto f = build_filter(with({{"on_error", "allow"}}));
    Run run;
    auto v = run.finish(*f, answer(500, {}, "boom"));
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 500);
    CHECK(run.counters.ext_auth_errors == 0);
  }
}

TEST_CASE("ext_auth: a service that cannot answer fails closed or open as on_error says",
          "[ext_auth]") {
  const bool timed_out = GENERATE(true, false);
  INFO((timed_out ? "timed out" : "refused"));
  SECTION("deny (the default): 503 policy_unavailable") {
    const auto f = build_filter(with({{"upstream_headers", {"x-user"}}}));
    Run run;
    auto v = run.finish(*f, transport_error(timed_out));
    REQUIRE(v.type() == Verdict::Type::reply);
    const LocalReply& r = v.reply();
    CHECK(r.kind == gw::wire::ErrorKind::policy_unavailable);
    CHECK(r.effective_status() == 503);
    CHECK_FALSE(r.body); // the gateway's own JSON error body
    // The service's address is for the log only.
    CHECK(r.message.find("127.0.0.1") == std::string::npos);
    CHECK(r.detail.find("127.0.0.1:9000") != std::string::npos);
    CHECK(run.counters.ext_auth_errors == 1);
    REQUIRE(run.ctx.notes.size() == 1);
    CHECK(run.ctx.notes[0].second); // limited: a dead service must not flood the log
    CHECK(run.ctx.notes[0].first.starts_with("ext_auth \"auth\": http 127.0.0.1:9000: "));
    CHECK(run.ctx.notes[0].first.ends_with("(on_error = \"deny\")"));
  }
  SECTION("allow: the request goes on, unauthenticated and without forged headers") {
    const auto f = build_filter(with({{"upstream_headers", {"x-user"}}, {"on_error", "allow"}}));
    Run run;
    run.req.header("x-user", "forged");
    auto v = run.finish(*f, transport_error(timed_out));
    CHECK(v.type() == Verdict::Type::proceed);
    CHECK_FALSE(run.ctx.identity.authenticated);
    CHECK(run.ctx.edits.drops("x-user"));
    CHECK(run.ctx.edits.set.empty());
    CHECK(run.counters.ext_auth_errors == 1);
    REQUIRE(run.ctx.notes.size() == 1);
    CHECK(run.ctx.notes[0].second);
    CHECK(run.ctx.notes[0].first.ends_with("(on_error = \"allow\")"));
  }
  SECTION("no counters to bump is not a crash") {
    const auto f = build_filter(kBase);
    Run run;
    run.ctx.counters = nullptr;
    CHECK(run.finish(*f, transport_error(timed_out)).type() == Verdict::Type::reply);
  }
}

TEST_CASE("ext_auth: build refuses settings its reader refuses", "[ext_auth]") {
  BuildContext b;
  b.policy = "auth";
  b.settings = R"({"kind":"ext_auth","url":"http://auth.example/"})";
  auto f = kind().build(b);
  REQUIRE_FALSE(f);
  CHECK(f.error().message.find("not a host name") != std::string::npos);
  b.settings = "not json";
  CHECK_FALSE(kind().build(b));
}
