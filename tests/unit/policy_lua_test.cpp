// The lua kind on its own: its settings reader with real script files, its factory, and its
// hooks run over a fake request, as the proxy will run them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gw/core/text.hpp"
#include "gw/policy/kinds.hpp"
#include "policy/kinds/lua_kind.hpp"
#include "support/spec_builder.hpp"
#include "support/temp_dir.hpp"

using namespace gw::policy;
using json = nlohmann::json;
namespace fs = std::filesystem;
using gwtest::TempDir;

namespace {

class FakeRequest final : public RequestView {
public:
  FakeRequest& header(std::string name, std::string value) {
    headers_.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  FakeRequest& path(std::string p) {
    path_ = std::move(p);
    return *this;
  }
  FakeRequest& query(std::string q) {
    query_ = std::move(q);
    return *this;
  }
  std::string_view method() const noexcept override { return "POST"; }
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
  std::string_view path() const noexcept override { return path_; }
  std::string_view query() const noexcept override { return query_; }
  std::string_view host() const noexcept override { return "api.test"; }
  std::string_view client_ip() const noexcept override { return "192.0.2.10"; }
  std::string_view request_id() const noexcept override { return "req-1"; }

private:
  std::string path_ = "/orders/7", query_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

class FakeResponse final : public ResponseView {
public:
  explicit FakeResponse(unsigned status, HeaderList headers = {})
      : status_(status), headers_(std::move(headers)) {}
  unsigned status() const noexcept override { return status_; }
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [n, v] : headers_)
      if (n == name) return std::string_view(v);
    return std::nullopt;
  }

private:
  unsigned status_;
  HeaderList headers_;
};

struct Compiled {
  gw::Diagnostics diags;
  std::optional<json> canonical;
  const gw::Diagnostic* find(const std::string& code) const {
    return gwtest::find_diagnostic(diags, code);
  }
  std::string dump() const { return gwtest::dump_diagnostics(diags); }
};

Compiled compile_in(const TempDir& dir, const json& settings, std::string_view policy = "tag") {
  Compiled c;
  Context ctx;
  ctx.policy = policy;
  ctx.loc = gw::SourceLoc{"spec.toml", 12, 1};
  ctx.base_dir = dir.path();
  c.canonical = kLuaKind.compile(settings, ctx, c.diags);
  return c;
}

json lua_settings(const std::string& script = "plugins/x.lua") {
  return {{"kind", "lua"}, {"script", script}};
}

std::shared_ptr<const Filter> build_from(const json& canonical, std::string_view policy = "tag") {
  BuildContext bc;
  bc.policy = policy;
  const std::string text = canonical.dump();
  bc.settings = text;
  auto f = kLuaKind.build(bc);
  INFO((f ? std::string() : f.error().message));
  REQUIRE(f);
  return *f;
}

/// A plugin from script text (plugins/x.lua in its own directory), with extra settings.
std::shared_ptr<const Filter> plugin(const std::string& source, json extra = json::object()) {
  TempDir dir;
  dir.write("plugins/x.lua", source);
  json s = lua_settings();
  s.update(extra);
  auto c = compile_in(dir, s);
  INFO(c.dump());
  REQUIRE(c.canonical);
  return build_from(*c.canonical);
}

/// One request's context, as the proxy keeps it for a connection.
struct Exchange {
  FakeRequest req;
  FilterCounters counters;
  FilterContext ctx;
  Exchange() { reset(); }
  void reset() {
    ctx.reset();
    ctx.request = &req;
    ctx.route = "orders";
    ctx.counters = &counters;
    ctx.now_s = 1'700'000'000;
  }
};

bool has_note(const FilterContext& ctx, const std::string& part) {
  return std::any_of(ctx.notes.begin(), ctx.notes.end(),
                     [&](const auto& n) { return n.first.find(part) != std::string::npos; });
}

std::string header_of(const HeaderList& list, const std::string& name) {
  for (const auto& [n, v] : list)
    if (n == name) return v;
  return "(none)";
}

bool listed(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

/// A hook's reply must be the 500 a failed plugin gives; returns its detail.
std::string failure(Verdict& v) {
  REQUIRE(v.type() == Verdict::Type::reply);
  CHECK(v.reply().effective_status() == 500);
  CHECK(v.reply().kind == gw::wire::ErrorKind::internal);
  CHECK(v.reply().message == "plugin tag failed");
  return v.reply().detail;
}

} // namespace

// ---- settings

TEST_CASE("lua: the row is a plugin that authenticates nobody", "[lua]") {
  CHECK(kLuaKind.name == "lua");
  CHECK(kLuaKind.phase == Phase::plugin);
  CHECK_FALSE(kLuaKind.authenticates);
  CHECK_FALSE(kLuaKind.composite);
  const json schema = json::parse(kLuaKind.schema);
  CHECK(schema.contains("script"));
  CHECK(schema.contains("max_instructions"));
  CHECK(schema.contains("max_memory"));
}

TEST_CASE("lua: compile embeds the script text, its name and the limits", "[lua]") {
  TempDir dir;
  const std::string src = "function on_request() end\n";
  dir.write("plugins/x.lua", src);
  SECTION("defaults") {
    auto c = compile_in(dir, lua_settings());
    INFO(c.dump());
    REQUIRE(c.canonical);
    CHECK(c.diags.empty());
    CHECK((*c.canonical)["script"] == "plugins/x.lua"); // as written, not where gwctl ran
    CHECK((*c.canonical)["source"] == src);
    CHECK((*c.canonical)["max_instructions"] == 1'000'000);
    CHECK((*c.canonical)["max_memory"] == 8 * 1024 * 1024);
  }
  SECTION("given limits") {
    json s = lua_settings();
    s["max_instructions"] = 5000;
    s["max_memory"] = "1MiB";
    auto c = compile_in(dir, s);
    REQUIRE(c.canonical);
    CHECK((*c.canonical)["max_instructions"] == 5000);
    CHECK((*c.canonical)["max_memory"] == 1024 * 1024);
  }
}

TEST_CASE("lua: a syntax error is reported at the script's own file:line", "[lua]") {
  TempDir dir;
  SECTION("a short path") {
    const auto path =
        dir.write("plugins/x.lua", "function on_request()\n  local x = 1\n  x = = 2\nend\n");
    auto c = compile_in(dir, lua_settings());
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("policy.lua-syntax");
    INFO(c.dump());
    REQUIRE(d);
    CHECK(d->file == path.string());
    CHECK(d->line == 3);
    CHECK(d->message.find("policy \"tag\"") != std::string::npos);
    CHECK(d->message.find("unexpected symbol near '='") != std::string::npos);
    CHECK(d->hint.find("spec.toml:12") != std::string::npos);
  }
  SECTION("a path longer than Lua shows in its messages") {
    const std::string deep = "plugins/" + std::string(70, 'd') + "/x.lua";
    const auto path = dir.write(deep, "\n\nlocal = 1\n");
    auto c = compile_in(dir, lua_settings(deep));
    const auto* d = c.find("policy.lua-syntax");
    INFO(c.dump());
    REQUIRE(d);
    CHECK(d->file == path.string());
    CHECK(d->line == 3);
    CHECK(d->message.find("<name> expected near '='") != std::string::npos);
  }
}

TEST_CASE("lua: a script that fails at its top level is reported where it fails", "[lua]") {
  TempDir dir;
  const auto path =
      dir.write("plugins/x.lua", "-- reads the environment\nlocal home = os.getenv('HOME')\n");
  auto c = compile_in(dir, lua_settings());
  CHECK_FALSE(c.canonical);
  const auto* d = c.find("policy.lua-error");
  INFO(c.dump());
  REQUIRE(d);
  CHECK(d->file == path.string());
  CHECK(d->line == 2);
  CHECK(d->message.find("global 'os'") != std::string::npos);
}

TEST_CASE("lua: a missing script, bytecode and bad settings are refused", "[lua]") {
  TempDir dir;
  SECTION("no such file") {
    auto c = compile_in(dir, lua_settings("plugins/none.lua"));
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("input.unreadable");
    INFO(c.dump());
    REQUIRE(d);
    CHECK(d->message.find((dir.path() / "plugins/none.lua").string()) != std::string::npos);
  }
  SECTION("bytecode") {
    dir.write("plugins/x.lua", std::string("\x1bLuaT\x00\x19\x93\r\n\x1a\n", 12));
    auto c = compile_in(dir, lua_settings());
    CHECK_FALSE(c.canonical);
    INFO(c.dump());
    REQUIRE(c.find("policy.lua-bytecode"));
  }
  SECTION("an unknown key, with a suggestion") {
    dir.write("plugins/x.lua", "function on_request() end\n");
    json s = lua_settings();
    s["max_memroy"] = "1MiB";
    auto c = compile_in(dir, s);
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("spec.unknown-key");
    INFO(c.dump());
    REQUIRE(d);
    CHECK(d->hint == "did you mean \"max_memory\"?");
  }
  SECTION("no script") {
    auto c = compile_in(dir, json{{"kind", "lua"}});
    CHECK_FALSE(c.canonical);
    REQUIRE(c.find("spec.missing-key"));
  }
  SECTION("limits out of range") {
    dir.write("plugins/x.lua", "function on_request() end\n");
    json s = lua_settings();
    s["max_memory"] = "1KiB";
    s["max_instructions"] = 10;
    auto c = compile_in(dir, s);
    CHECK_FALSE(c.canonical);
    CHECK(c.diags.error_count() == 2);
  }
  SECTION("a hook name that is not a function") {
    dir.write("plugins/x.lua", "on_request = 42\n");
    auto c = compile_in(dir, lua_settings());
    CHECK_FALSE(c.canonical);
    const auto* d = c.find("policy.lua-error");
    REQUIRE(d);
    CHECK(d->message.find("on_request must be a function") != std::string::npos);
  }
}

TEST_CASE("lua: a script without hooks is a warning", "[lua]") {
  TempDir dir;
  dir.write("plugins/x.lua", "local x = 1\n");
  auto c = compile_in(dir, lua_settings());
  CHECK(c.canonical);
  CHECK(c.find("policy.lua-no-hooks"));
}

TEST_CASE("lua: build refuses settings it cannot run", "[lua]") {
  BuildContext bc;
  bc.policy = "tag";
  bc.settings = R"({"kind":"lua","script":"x.lua"})";
  CHECK_FALSE(kLuaKind.build(bc));
  bc.settings =
      R"j({"kind":"lua","script":"x.lua","source":"error('no')","max_instructions":1000,"max_memory":1048576})j";
  auto f = kLuaKind.build(bc);
  REQUIRE_FALSE(f);
  CHECK(f.error().message.find("x.lua:1: no") != std::string::npos);
}

// ---- the request API

TEST_CASE("lua: request headers are read from the client and set for the upstream", "[lua]") {
  auto f = plugin(R"(
function on_request()
  local tenant = gw.request.get_header("X-Tenant")
  gw.request.set_header("X-Upstream-Tenant", "t-" .. tenant)
  gw.request.set_header("x-count", 3)
  gw.request.clear_header("X-Secret")
  local all = gw.request.get_headers()
  gw.request.set_header("x-seen", all["x-tenant"] .. "," .. all["accept"][1] .. "+" .. all["accept"][2])
  if gw.request.get_header("x-missing") ~= nil then error("found a missing header") end
end
)");
  Exchange x;
  x.req.header("X-Tenant", "acme")
      .header("X-Secret", "s")
      .header("Accept", "a/1")
      .header("accept", "b/2");
  auto v = f->on_request(x.ctx);
  INFO(v.reply().detail);
  REQUIRE(v.type() == Verdict::Type::proceed);
  CHECK(header_of(x.ctx.edits.set, "x-upstream-tenant") == "t-acme");
  CHECK(header_of(x.ctx.edits.set, "x-count") == "3");
  CHECK(header_of(x.ctx.edits.set, "x-seen") == "acme,a/1+b/2");
  CHECK(listed(x.ctx.edits.drop, "x-secret"));
  CHECK(x.ctx.edits.drops("X-Upstream-Tenant")); // a client's own copy is not forwarded
}

TEST_CASE("lua: headers a script may not send are Lua errors", "[lua]") {
  const auto run = [](const std::string& call) {
    auto f = plugin("function on_request() " + call + " end\n");
    Exchange x;
    auto v = f->on_request(x.ctx);
    return failure(v);
  };
  CHECK(run(R"(gw.request.set_header("x-a", "1\r\nx-b: 2"))").find("control characters") !=
        std::string::npos);
  CHECK(run(R"(gw.request.set_header("x a", "1"))").find("not a valid header name") !=
        std::string::npos);
  CHECK(run(R"(gw.request.set_header("x-a", "a\0b"))").find("control characters") !=
        std::string::npos);
  CHECK(run(R"(gw.request.set_header("Host", "evil"))").find("managed by the proxy") !=
        std::string::npos);
  CHECK(run(R"(gw.response.add_header("transfer-encoding", "chunked"))")
            .find("managed by the proxy") != std::string::npos);
}

TEST_CASE("lua: set_path changes the upstream path, in canonical form", "[lua]") {
  Exchange x;
  SECTION("a good path") {
    auto f = plugin(
        R"(function on_request() gw.request.set_path("/v2" .. gw.request.get_path() .. "/./x/../%7euser") end)");
    auto v = f->on_request(x.ctx);
    INFO(v.reply().detail);
    REQUIRE(v.type() == Verdict::Type::proceed);
    REQUIRE(x.ctx.edits.path);
    CHECK(*x.ctx.edits.path == "/v2/orders/7/~user");
  }
  SECTION("refused paths") {
    for (const char* bad : {"v2", "/a\r\nx: y", "/a?b=1", "/../etc"}) {
      auto f = plugin(std::string("function on_request() gw.request.set_path(") + json(bad).dump() +
                      ") end");
      x.reset();
      auto v = f->on_request(x.ctx);
      CHECK(failure(v).find("gw.request.set_path") != std::string::npos);
      CHECK_FALSE(x.ctx.edits.path);
    }
  }
}

TEST_CASE("lua: the request's method, query, client and route are readable", "[lua]") {
  auto f = plugin(R"(
function on_request()
  local q = gw.request.get_query()
  gw.request.set_header("x-info", table.concat({
    gw.request.get_method(), gw.request.get_path(), gw.request.get_query_arg("q"),
    tostring(gw.request.get_query_arg("none")), q.tag[1] .. q.tag[2], gw.request.get_raw_query(),
    gw.request.get_client_ip(), gw.request.get_host(), gw.request.get_id(), gw.route.name,
    tostring(gw.consumer), tostring(gw.now())}, "|"))
end
)");
  Exchange x;
  x.req.query("q=a%20b+c&tag=1&tag=2");
  SECTION("anonymous") {
    auto v = f->on_request(x.ctx);
    INFO(v.reply().detail);
    REQUIRE(v.type() == Verdict::Type::proceed);
    CHECK(header_of(x.ctx.edits.set, "x-info") ==
          "POST|/orders/7|a b c|nil|12|q=a%20b+c&tag=1&tag=2|192.0.2.10|api.test|req-1|orders|"
          "nil|1700000000");
  }
  SECTION("an authenticated consumer") {
    x.ctx.identity.authenticated = true;
    x.ctx.identity.consumer = "alice";
    auto v = f->on_request(x.ctx);
    REQUIRE(v.type() == Verdict::Type::proceed);
    CHECK(header_of(x.ctx.edits.set, "x-info").find("|orders|alice|") != std::string::npos);
  }
}

TEST_CASE("lua: request setters belong to on_request", "[lua]") {
  auto f = plugin(R"(function on_response() gw.request.set_header("x-a", "1") end)");
  Exchange x;
  FakeResponse resp(200);
  x.ctx.response = &resp;
  auto v = f->on_response(x.ctx);
  CHECK(failure(v).find("available only in on_request") != std::string::npos);
}

// ---- exit and the response API

TEST_CASE("lua: exit answers with the script's status, body and headers", "[lua]") {
  Exchange x;
  SECTION("a string body") {
    auto f = plugin(R"(
function on_request()
  gw.response.exit(403, "go away\n", { ["X-Why"] = "tenant", ["Set-Cookie"] = { "a=1", "b=2" } })
  error("exit must end the hook")
end
)");
    auto v = f->on_request(x.ctx);
    REQUIRE(v.type() == Verdict::Type::reply);
    const LocalReply& r = v.reply();
    CHECK(r.effective_status() == 403);
    CHECK(r.kind == gw::wire::ErrorKind::forbidden);
    REQUIRE(r.body);
    CHECK(*r.body == "go away\n");
    CHECK(r.content_type == "text/plain; charset=utf-8");
    CHECK(header_of(r.headers, "x-why") == "tenant");
    CHECK(std::count_if(r.headers.begin(), r.headers.end(),
                        [](const auto& kv) { return kv.first == "set-cookie"; }) == 2);
  }
  SECTION("a table body is JSON, with the script's own content type") {
    auto f = plugin(R"(
function on_request()
  gw.response.exit(429, { message = "slow down", tries = { 1, 2.5, true } },
                   { ["Content-Type"] = "application/problem+json" })
end
)");
    auto v = f->on_request(x.ctx);
    REQUIRE(v.type() == Verdict::Type::reply);
    REQUIRE(v.reply().body);
    CHECK(json::parse(*v.reply().body) ==
          json{{"message", "slow down"}, {"tries", {1, 2.5, true}}});
    CHECK(v.reply().content_type == "application/problem+json");
  }
  SECTION("no body") {
    auto f = plugin("function on_request() gw.response.exit(204) end");
    auto v = f->on_request(x.ctx);
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 204);
    REQUIRE(v.reply().body);
    CHECK(v.reply().body->empty());
    CHECK(v.reply().content_type.empty());
  }
  SECTION("caught by pcall, it still answers") {
    auto f = plugin("function on_request() pcall(gw.response.exit, 401, 'no') end");
    auto v = f->on_request(x.ctx);
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 401);
  }
  SECTION("a bad status is an error") {
    for (const char* s : {"99", "101", "600", "'x'"}) {
      auto f = plugin(std::string("function on_request() gw.response.exit(") + s + ") end");
      x.reset();
      auto v = f->on_request(x.ctx);
      failure(v);
    }
  }
  SECTION("from on_response, it replaces the upstream's answer") {
    auto f = plugin("function on_response() gw.response.exit(502, 'bad upstream') end");
    FakeResponse resp(200);
    x.ctx.response = &resp;
    auto v = f->on_response(x.ctx);
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 502);
  }
}

TEST_CASE("lua: on_response reads the upstream's answer and changes its headers", "[lua]") {
  auto f = plugin(R"(
function on_request() gw.response.add_header("x-early", "1") end
function on_response()
  gw.response.set_header("X-Status", gw.response.get_status())
  gw.response.set_header("x-server", "was " .. gw.response.get_header("Server"))
  gw.response.add_header("x-a", "1")
  gw.response.add_header("x-a", "2")
  gw.response.clear_header("x-internal")
end
)");
  Exchange x;
  REQUIRE(f->on_request(x.ctx).type() == Verdict::Type::proceed);
  FakeResponse resp(201, {{"server", "backend"}, {"x-internal", "10.0.0.5"}});
  x.ctx.response = &resp;
  auto v = f->on_response(x.ctx);
  INFO(v.reply().detail);
  REQUIRE(v.type() == Verdict::Type::proceed);
  CHECK(header_of(x.ctx.edits.response_set, "x-status") == "201");
  CHECK(header_of(x.ctx.edits.response_set, "x-server") == "was backend");
  CHECK(std::count_if(x.ctx.edits.response_add.begin(), x.ctx.edits.response_add.end(),
                      [](const auto& kv) { return kv.first == "x-a"; }) == 2);
  CHECK(header_of(x.ctx.edits.response_add, "x-early") == "1");
  CHECK(listed(x.ctx.edits.response_remove, "x-internal"));
}

TEST_CASE("lua: gw.ctx is shared by one request's hooks and fresh for the next", "[lua]") {
  auto f = plugin(R"(
local requests = 0
function on_request()
  requests = requests + 1
  if gw.ctx.seen then error("gw.ctx leaked from an earlier request") end
  gw.ctx.seen = requests
end
function on_response()
  gw.response.set_header("x-seen", gw.ctx.seen)
end
function on_log()
  gw.log("request", gw.ctx.seen, "ended with", gw.response.get_status())
end
)");
  Exchange x;
  for (int i = 1; i <= 3; ++i) {
    x.reset();
    REQUIRE(f->on_request(x.ctx).type() == Verdict::Type::proceed);
    FakeResponse resp(200);
    x.ctx.response = &resp;
    auto v = f->on_response(x.ctx);
    INFO(v.reply().detail);
    REQUIRE(v.type() == Verdict::Type::proceed);
    CHECK(header_of(x.ctx.edits.response_set, "x-seen") == std::to_string(i));
    x.ctx.status = 200;
    f->on_log(x.ctx);
    CHECK(has_note(x.ctx, "plugin tag: request " + std::to_string(i) + " ended with 200"));
  }
  SECTION("a request that ends without on_log releases it too (reset)") {
    x.reset();
    REQUIRE(f->on_request(x.ctx).type() == Verdict::Type::proceed);
    x.reset();
    REQUIRE(f->on_request(x.ctx).type() == Verdict::Type::proceed);
  }
}

// ---- failures

TEST_CASE("lua: a runtime error is a 500 with the Lua error as its detail", "[lua]") {
  auto f = plugin("function on_request()\n  local t = nil\n  return t.field\nend\n");
  Exchange x;
  auto v = f->on_request(x.ctx);
  const std::string detail = failure(v);
  CHECK(detail.find("on_request: plugins/x.lua:3:") != std::string::npos);
  CHECK(detail.find("attempt to index a nil value") != std::string::npos);
  CHECK(x.counters.lua_errors == 1);
  REQUIRE(x.ctx.notes.size() == 1);
  CHECK(x.ctx.notes[0].first.find("plugin tag failed: on_request: plugins/x.lua:3:") == 0);
  CHECK(x.ctx.notes[0].second); // rate limited in gwd's log
}

TEST_CASE("lua: a failed hook leaves no edits behind", "[lua]") {
  auto f = plugin(R"(
function on_request()
  gw.request.set_header("x-half", "1")
  gw.request.set_header("x-first", "replaced")
  gw.response.add_header("x-half", "1")
  error("boom")
end
)");
  Exchange x;
  x.ctx.edits.set_header("x-first", "from an earlier filter");
  auto v = f->on_request(x.ctx);
  failure(v);
  CHECK(x.ctx.edits.set == HeaderList{{"x-first", "from an earlier filter"}});
  CHECK(x.ctx.edits.response_add.empty());
}

TEST_CASE("lua: an endless loop runs out of budget and the next call works", "[lua]") {
  auto f = plugin(R"(
function on_request()
  if gw.request.get_header("x-loop") == "plain" then while true do end end
  if gw.request.get_header("x-loop") == "pcall" then
    while true do pcall(function() while true do end end) end
  end
  gw.request.set_header("x-ok", "1")
end
)",
                  {{"max_instructions", 100000}});
  for (const char* how : {"plain", "pcall"}) {
    Exchange x;
    x.req.header("x-loop", how);
    auto v = f->on_request(x.ctx);
    CHECK(failure(v).find("instruction budget exhausted (100000 instructions)") !=
          std::string::npos);
    CHECK(x.counters.lua_errors == 1);
    Exchange next;
    auto ok = f->on_request(next.ctx);
    INFO(ok.reply().detail);
    REQUIRE(ok.type() == Verdict::Type::proceed);
    CHECK(header_of(next.ctx.edits.set, "x-ok") == "1");
  }
}

TEST_CASE("lua: a memory bomb hits the cap and the next call works", "[lua]") {
  auto f = plugin(R"(
hoard = {}
function on_request()
  local how = gw.request.get_header("x-bomb")
  if how == "one" then local s = string.rep("x", 64 * 1024 * 1024) end
  if how == "many" then for i = 1, 1e9 do hoard[i] = string.rep("x", 1000) .. i end end
  gw.request.set_header("x-ok", tostring(#hoard))
end
)",
                  {{"max_memory", "2MiB"}});
  for (const char* how : {"one", "many"}) {
    Exchange x;
    x.req.header("x-bomb", how);
    auto v = f->on_request(x.ctx);
    CHECK(failure(v).find("memory limit exceeded (2MiB)") != std::string::npos);
    Exchange next;
    auto ok = f->on_request(next.ctx);
    INFO(ok.reply().detail);
    REQUIRE(ok.type() == Verdict::Type::proceed);
    // The state that filled up was replaced: its globals are gone.
    CHECK(header_of(next.ctx.edits.set, "x-ok") == "0");
  }
}

TEST_CASE("lua: the sandbox has no way out", "[lua]") {
  auto f = plugin(R"(
function on_request()
  for _, name in ipairs({ "os", "io", "require", "load", "loadstring", "dofile", "loadfile",
                          "package", "debug", "coroutine", "warn" }) do
    if _G[name] ~= nil then error(name .. " is reachable") end
  end
  if string.dump ~= nil or ("").dump ~= nil then error("string.dump is reachable") end
  if pcall(collectgarbage, "stop") then error("the collector can be stopped") end
  if type(collectgarbage("count")) ~= "number" then error("count does not work") end
  -- Library calls that could spin without allocating, and finalizers (run with hooks off).
  if string.rep("", 2^62) ~= "" or ("x"):rep(3, "") ~= "xxx" then error("rep") end
  if pcall(table.move, {}, 1, 1e15, 2) then error("table.move of 1e15 nils ran") end
  if table.move({ 1, 2 }, 1, 2, 2)[3] ~= 2 then error("table.move") end
  if pcall(setmetatable, {}, { __gc = function() while true do end end }) then
    error("a finalizer was accepted")
  end
  local obj = setmetatable({}, { __index = function(_, k) return k .. "!" end })
  if obj.hi ~= "hi!" then error("setmetatable") end
  gw.request.set_header("x-libs", string.upper("ok") .. math.max(1, 2) .. table.concat({ "a", "b" })
                        .. utf8.char(72))
end
)");
  Exchange x;
  auto v = f->on_request(x.ctx);
  INFO(v.reply().detail);
  REQUIRE(v.type() == Verdict::Type::proceed);
  CHECK(header_of(x.ctx.edits.set, "x-libs") == "OK2abH");
}

TEST_CASE("lua: a rebuilt plugin runs its new script on the same thread", "[lua]") {
  auto v1 = plugin(R"(function on_request() gw.request.set_header("x-version", "1") end)");
  Exchange x;
  REQUIRE(v1->on_request(x.ctx).type() == Verdict::Type::proceed);
  CHECK(header_of(x.ctx.edits.set, "x-version") == "1");
  const std::size_t states = lua_worker_states();
  auto v2 = plugin(R"(function on_request() gw.request.set_header("x-version", "2") end)");
  x.reset();
  REQUIRE(v2->on_request(x.ctx).type() == Verdict::Type::proceed);
  CHECK(header_of(x.ctx.edits.set, "x-version") == "2");
  CHECK(lua_worker_states() == states + 1);
  // Once the old generation's filter is gone, so is its state on this worker.
  v1.reset();
  CHECK(lua_worker_states() == states);
  x.reset();
  REQUIRE(v2->on_request(x.ctx).type() == Verdict::Type::proceed);
  CHECK(header_of(x.ctx.edits.set, "x-version") == "2");
}

TEST_CASE("lua: gw.log lines are single lines, and bounded", "[lua]") {
  auto f = plugin(R"(
function on_request()
  gw.log("two\nlines", 42, nil)
  print("from print")
  for i = 1, 100 do gw.log(i) end
end
)");
  Exchange x;
  REQUIRE(f->on_request(x.ctx).type() == Verdict::Type::proceed);
  CHECK(x.ctx.notes[0].first == "plugin tag: two lines 42 nil");
  CHECK(x.ctx.notes[1].first == "plugin tag: from print");
  CHECK(x.ctx.notes.size() == 51);
  CHECK(has_note(x.ctx, "the rest are dropped"));
}

TEST_CASE("lua: the README's example plugin does what the README says", "[lua]") {
  Context ctx;
  ctx.policy = "tenant";
  ctx.base_dir = GW_SOURCE_DIR "/tests/readme";
  gw::Diagnostics diags;
  auto c = kLuaKind.compile(lua_settings("plugins/tenant.lua"), ctx, diags);
  INFO(gwtest::dump_diagnostics(diags));
  REQUIRE(c);
  CHECK(diags.empty());
  auto f = build_from(*c, "tenant");
  SECTION("a known tenant goes on, with its region") {
    Exchange x;
    x.req.header("x-tenant", "acme");
    REQUIRE(f->on_request(x.ctx).type() == Verdict::Type::proceed);
    CHECK(header_of(x.ctx.edits.set, "x-region") == "eu-1");
    FakeResponse resp(502);
    x.ctx.response = &resp;
    REQUIRE(f->on_response(x.ctx).type() == Verdict::Type::proceed);
    CHECK(header_of(x.ctx.edits.response_set, "x-served-from") == "eu-1");
    x.ctx.status = 502;
    f->on_log(x.ctx);
    CHECK(has_note(x.ctx, "plugin tenant: tenant acme got 502"));
  }
  SECTION("an unknown one is refused") {
    Exchange x;
    auto v = f->on_request(x.ctx);
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 403);
    REQUIRE(v.reply().body);
    CHECK(json::parse(*v.reply().body) == json{{"message", "unknown tenant"}});
    f->on_log(x.ctx);
  }
}

// ---- the response body

namespace {

/// What a stream-mode filter does to a body handed over in `pieces`: each piece, then the end
/// (an empty piece with last = true), as the proxy calls it. Stops at the first reply.
struct Streamed {
  std::string out;
  std::vector<Verdict::Type> verdicts;
  std::string detail;
};
Streamed stream_through(const Filter& f, Exchange& x, const std::vector<std::string>& pieces) {
  Streamed s;
  for (std::size_t i = 0; i <= pieces.size(); ++i) {
    const bool last = i == pieces.size();
    std::string data = last ? std::string() : pieces[i];
    Verdict v = f.on_response_body(x.ctx, data, last);
    s.verdicts.push_back(v.type());
    if (v.type() == Verdict::Type::reply) {
      s.detail = v.reply().detail;
      break;
    }
    s.out += data;
  }
  return s;
}

} // namespace

TEST_CASE("lua: response_body sets the filter's body mode", "[lua]") {
  const std::string src = "function on_response_body(chunk, last) end\n";
  CHECK(plugin(src, {{"response_body", "stream"}})->response_body() == BodyMode::stream);
  CHECK(plugin(src, {{"response_body", "whole"}})->response_body() == BodyMode::whole);
  CHECK(plugin("function on_request() end\n")->response_body() == BodyMode::none);
}

TEST_CASE("lua: response_body and on_response_body go together", "[lua]") {
  TempDir dir;
  std::map<std::string, gw::SourceLoc> locs{{"/response_body", gw::SourceLoc{"spec.toml", 15, 17}}};
  Context ctx;
  ctx.policy = "tag";
  ctx.loc = gw::SourceLoc{"spec.toml", 12, 1};
  ctx.locs = &locs;
  ctx.base_dir = dir.path();
  gw::Diagnostics diags;
  const auto compile = [&](const std::string& source, json extra) {
    dir.write("plugins/x.lua", source);
    json s = lua_settings();
    s.update(extra);
    diags = gw::Diagnostics();
    return kLuaKind.compile(s, ctx, diags);
  };
  SECTION("the hook without the setting is never called: a warning") {
    auto c = compile("function on_response_body(chunk) return chunk:upper() end\n", json::object());
    INFO(gwtest::dump_diagnostics(diags));
    REQUIRE(c);
    const auto* d = gwtest::find_diagnostic(diags, "policy.lua-body-unused");
    REQUIRE(d);
    CHECK(d->severity == gw::Severity::warning);
    CHECK(d->message.find("never called without response_body") != std::string::npos);
    // It is the only hook, but the warning above says why the script does nothing.
    CHECK_FALSE(gwtest::find_diagnostic(diags, "policy.lua-no-hooks"));
    // And the filter built from it leaves bodies alone.
    auto f = build_from(*c);
    CHECK(f->response_body() == BodyMode::none);
    Exchange x;
    std::string data = "abc";
    CHECK(f->on_response_body(x.ctx, data, true).type() == Verdict::Type::proceed);
    CHECK(data == "abc");
  }
  SECTION("the setting without the hook: an error at the key") {
    auto c = compile("function on_response() end\n", {{"response_body", "whole"}});
    CHECK_FALSE(c);
    const auto* d = gwtest::find_diagnostic(diags, "policy.lua-no-body-hook");
    INFO(gwtest::dump_diagnostics(diags));
    REQUIRE(d);
    CHECK(d->severity == gw::Severity::error);
    CHECK(d->line == 15);
    CHECK(d->message.find("defines no on_response_body") != std::string::npos);
  }
  SECTION("a value other than stream or whole") {
    auto c = compile("function on_response_body() end\n", {{"response_body", "chunked"}});
    CHECK_FALSE(c);
    const auto* d = gwtest::find_diagnostic(diags, "policy.invalid");
    INFO(gwtest::dump_diagnostics(diags));
    REQUIRE(d);
    CHECK(d->line == 15);
    CHECK(d->message.find("\"stream\"") != std::string::npos);
  }
  SECTION("both: no diagnostics") {
    auto c = compile("function on_response_body() end\n", {{"response_body", "stream"}});
    REQUIRE(c);
    CHECK(diags.empty());
    CHECK((*c)["response_body"] == "stream");
  }
}

TEST_CASE("lua: build refuses a body mode it cannot run", "[lua]") {
  BuildContext bc;
  bc.policy = "tag";
  bc.settings = R"({"kind":"lua","script":"x.lua","source":"function on_response_body() end",)"
                R"("max_instructions":1000,"max_memory":1048576,"response_body":"sometimes"})";
  CHECK_FALSE(kLuaKind.build(bc));
  bc.settings = R"({"kind":"lua","script":"x.lua","source":"function on_request() end",)"
                R"("max_instructions":1000,"max_memory":1048576,"response_body":"whole"})";
  auto f = kLuaKind.build(bc);
  REQUIRE_FALSE(f);
  CHECK(f.error().message.find("defines no on_response_body") != std::string::npos);
}

TEST_CASE("lua: in stream mode each piece is replaced by what the hook returns", "[lua]") {
  auto f = plugin(R"(
function on_response_body(chunk, last)
  gw.ctx.pieces = (gw.ctx.pieces or 0) + 1
  if last then return "[" .. gw.ctx.pieces .. " pieces, status " .. gw.response.get_status() .. "]" end
  if chunk == "keep" then return nil end
  if chunk == "also kept" then return end
  return chunk:upper()
end
)",
                  {{"response_body", "stream"}});
  Exchange x;
  FakeResponse resp(200);
  x.ctx.response = &resp;
  const auto s = stream_through(*f, x, {"hello ", "keep", "also kept", " world"});
  CHECK(s.detail.empty());
  CHECK(s.out == "HELLO keepalso kept WORLD[5 pieces, status 200]");
  CHECK(x.counters.lua_errors == 0);
}

TEST_CASE("lua: an empty string drops a piece, and a result that is not a string is an error",
          "[lua]") {
  auto f = plugin(R"(
function on_response_body(chunk, last)
  if chunk == "drop" then return "" end
  if chunk == "table" then return {} end
end
)",
                  {{"response_body", "stream"}});
  Exchange x;
  CHECK(stream_through(*f, x, {"a", "drop", "b"}).out == "ab");
  x.reset();
  const auto s = stream_through(*f, x, {"a", "table", "b"});
  CHECK(s.out == "a");
  CHECK(s.verdicts.back() == Verdict::Type::reply);
  CHECK(s.detail.find("on_response_body must return a string or nil (it returned a table)") !=
        std::string::npos);
}

TEST_CASE("lua: a stream-mode failure is noted and counted, and the head cannot change", "[lua]") {
  const auto run = [](const std::string& body) {
    auto f = plugin("function on_response_body(chunk, last)\n" + body + "\nend\n",
                    {{"response_body", "stream"}});
    Exchange x;
    FakeResponse resp(200);
    x.ctx.response = &resp;
    auto s = stream_through(*f, x, {"one", "two"});
    CHECK(s.verdicts.size() == 1); // the first piece already fails
    CHECK(s.verdicts.back() == Verdict::Type::reply);
    CHECK(x.counters.lua_errors == 1);
    CHECK(has_note(x.ctx, "plugin tag failed: on_response_body: "));
    CHECK(has_note(x.ctx, "(the response is cut short)"));
    CHECK(x.ctx.edits.response_set.empty());
    return s.detail;
  };
  CHECK(run("error('boom')").find("on_response_body: plugins/x.lua:2: boom") != std::string::npos);
  CHECK(run("gw.response.exit(500, 'no')").find("gw.response.exit is available only in") !=
        std::string::npos);
  CHECK(run("gw.response.set_header('x-a', '1')")
            .find("gw.response.set_header is available only in") != std::string::npos);
}

TEST_CASE("lua: the budget applies to each call of the body hook", "[lua]") {
  // About 60000 instructions a call: ten calls are far past one budget, each within its own.
  auto f = plugin(R"(
function on_response_body(chunk, last)
  local n = 0
  for i = 1, 20000 do n = n + i end
  if chunk == "spin" then while true do end end
  gw.log("piece", chunk)
end
)",
                  {{"response_body", "stream"}, {"max_instructions", 100000}});
  Exchange x;
  std::vector<std::string> pieces(60, "p");
  auto s = stream_through(*f, x, pieces);
  CHECK(s.detail.empty());
  CHECK(s.verdicts.size() == 61);
  // gw.log's cap is per request, however many pieces the body has.
  CHECK(x.ctx.notes.size() == 51);
  CHECK(has_note(x.ctx, "the rest are dropped"));
  x.reset();
  s = stream_through(*f, x, {"p", "spin", "p"});
  CHECK(s.verdicts.size() == 2);
  CHECK(s.detail.find("instruction budget exhausted (100000 instructions)") != std::string::npos);
}

TEST_CASE("lua: in whole mode the hook sees the whole body once and may answer", "[lua]") {
  auto f = plugin(R"(
function on_response_body(body, last)
  if not last then error("whole mode is one call with last = true") end
  if gw.response.get_header("x-answer") then
    return gw.response.exit(418, { seen = #body }, { ["X-Why"] = "plugin" })
  end
  if gw.response.get_header("x-fail") then
    local t = nil
    return t.field
  end
  gw.response.set_header("content-type", "text/plain")
  return body:gsub("secret", "******")
end
)",
                  {{"response_body", "whole"}});
  Exchange x;
  SECTION("replaced, with a header set") {
    FakeResponse resp(200);
    x.ctx.response = &resp;
    std::string body = "a secret and a secret";
    auto v = f->on_response_body(x.ctx, body, true);
    INFO(v.reply().detail);
    REQUIRE(v.type() == Verdict::Type::proceed);
    CHECK(body == "a ****** and a ******");
    CHECK(header_of(x.ctx.edits.response_set, "content-type") == "text/plain");
  }
  SECTION("exit replaces the answer") {
    FakeResponse resp(200, {{"x-answer", "1"}});
    x.ctx.response = &resp;
    std::string body = "12345";
    auto v = f->on_response_body(x.ctx, body, true);
    REQUIRE(v.type() == Verdict::Type::reply);
    CHECK(v.reply().effective_status() == 418);
    REQUIRE(v.reply().body);
    CHECK(json::parse(*v.reply().body) == json{{"seen", 5}});
    CHECK(header_of(v.reply().headers, "x-why") == "plugin");
    CHECK(body == "12345");
    CHECK(x.counters.lua_errors == 0);
  }
  SECTION("an error is a 500, and the body and head are left as they were") {
    FakeResponse resp(200, {{"x-fail", "1"}});
    x.ctx.response = &resp;
    std::string body = "a secret";
    auto v = f->on_response_body(x.ctx, body, true);
    CHECK(failure(v).find("on_response_body: plugins/x.lua:9:") != std::string::npos);
    CHECK(body == "a secret");
    CHECK(x.counters.lua_errors == 1);
    CHECK_FALSE(has_note(x.ctx, "cut short"));
  }
}

TEST_CASE("lua: the body counts against the memory cap of each call", "[lua]") {
  auto f = plugin("function on_response_body(body) return body .. body end\n",
                  {{"response_body", "whole"}, {"max_memory", "1MiB"}});
  Exchange x;
  std::string small(100 * 1024, 'x');
  auto v = f->on_response_body(x.ctx, small, true);
  INFO(v.reply().detail);
  REQUIRE(v.type() == Verdict::Type::proceed);
  CHECK(small.size() == 200 * 1024);
  std::string big(700 * 1024, 'x');
  v = f->on_response_body(x.ctx, big, true);
  CHECK(failure(v).find("memory limit exceeded (1MiB)") != std::string::npos);
  CHECK(big.size() == 700 * 1024);
  // The next call, in a fresh state, works.
  x.reset();
  v = f->on_response_body(x.ctx, small, true);
  REQUIRE(v.type() == Verdict::Type::proceed);
  CHECK(small.size() == 400 * 1024);
}

TEST_CASE("lua: the README's response-body example does what the README says", "[lua]") {
  Context ctx;
  ctx.policy = "redact";
  ctx.base_dir = GW_SOURCE_DIR "/tests/readme";
  gw::Diagnostics diags;
  json s = lua_settings("plugins/redact.lua");
  s["response_body"] = "whole";
  auto c = kLuaKind.compile(s, ctx, diags);
  INFO(gwtest::dump_diagnostics(diags));
  REQUIRE(c);
  CHECK(diags.empty());
  auto f = build_from(*c, "redact");
  CHECK(f->response_body() == BodyMode::whole);
  Exchange x;
  SECTION("card numbers in JSON are masked, and counted in a header") {
    FakeResponse resp(200, {{"content-type", "application/json"}});
    x.ctx.response = &resp;
    std::string body =
        R"({"card_number": "4111111111111111", "other": {"card_number":"5500005555555559"}})";
    REQUIRE(f->on_response_body(x.ctx, body, true).type() == Verdict::Type::proceed);
    CHECK(body ==
          R"({"card_number": "************1111", "other": {"card_number":"************5559"}})");
    CHECK(header_of(x.ctx.edits.response_set, "x-redacted") == "2");
  }
  SECTION("other bodies go out as they came") {
    FakeResponse resp(200, {{"content-type", "text/plain"}});
    x.ctx.response = &resp;
    std::string body = R"("card_number": "4111111111111111")";
    REQUIRE(f->on_response_body(x.ctx, body, true).type() == Verdict::Type::proceed);
    CHECK(body == R"("card_number": "4111111111111111")");
    CHECK(x.ctx.edits.response_set.empty());
  }
}
