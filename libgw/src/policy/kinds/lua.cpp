// The lua kind: settings reader, the gw API bound into a sandboxed Lua state, the filter, and
// the one Lua state per worker and plugin that runs it.
//
// Lua's errors are longjmps (lua_sandbox.hpp): the lua_CFunctions below keep only trivially
// destructible locals (views, pointers, numbers) across any Lua call that may raise, and do
// their C++ work (strings, vectors, JSON) in Runtime's members or in helpers that return first.
#include "lua_kind.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <unordered_map>

#include <lua.hpp>

#include "gw/core/file.hpp"
#include "gw/core/text.hpp"
#include "gw/uri/normalize.hpp"
#include "lua_sandbox.hpp"
#include "policy/fields.hpp"

namespace gw::policy {
namespace {

using json = nlohmann::json;
using lua::Limits;
using lua::Outcome;
using lua::Sandbox;

constexpr std::uint64_t kMaxScript = 1ULL << 20;
constexpr std::uint64_t kMinMemory = 256ULL << 10; // the libraries and the gw API take ~20 KiB
constexpr std::uint64_t kMaxMemory = 1ULL << 30;
// What one request's plugin can make gw hold outside the Lua heap (which max_memory caps):
// header edits per list, header value bytes, log lines and their length.
constexpr std::size_t kMaxEdits = 100;
constexpr std::size_t kMaxValue = 16 * 1024;
constexpr std::size_t kMaxNotes = 50;
constexpr std::size_t kMaxNoteBytes = 2048;
constexpr int kMaxJsonDepth = 32;

constexpr std::string_view kSchema = R"({
  "script": {
    "description": "lua: the plugin's Lua 5.4 source file, relative to the spec; read, syntax-checked and embedded in the table at compile time (bytecode is refused).",
    "type": "string"
  },
  "max_instructions": {
    "description": "lua: Lua VM instructions one hook call may run (default 1000000); past it the request gets a 500.",
    "type": "integer",
    "minimum": 1000,
    "maximum": 1000000000
  },
  "max_memory": {
    "description": "lua: memory cap of the plugin's Lua state in each worker, e.g. \"8MiB\" (default; 256KiB to 1GiB).",
    "type": "string"
  },
  "response_body": {
    "description": "lua: how on_response_body sees the response body: stream (each piece as it arrives; the response goes out chunked) or whole (once, bounded by the route's max_body, then sent with its new length). Absent: the hook is not called.",
    "type": "string",
    "enum": ["stream", "whole"]
  }
})";

enum class Hook : std::uint8_t { none, request, response, log, body };
constexpr int kHooks = 4;
constexpr unsigned kOnRequest = 1, kOnResponse = 2, kAnyHook = 15; // on_log 4, on_response_body 8
// Not a hook of its own: on_response_body while the response head has not gone yet (whole
// mode), where what changes the head or replaces the answer still can.
constexpr unsigned kOnWholeBody = 16;
// The hooks that run while the response head can still change (or be replaced by an exit).
constexpr unsigned kBeforeHead = kOnRequest | kOnResponse | kOnWholeBody;
constexpr const char* kHookNames[] = {"", "on_request", "on_response", "on_log",
                                      "on_response_body"};

unsigned bit(Hook h) noexcept {
  return h == Hook::none ? 0U : 1U << (static_cast<unsigned>(h) - 1);
}

// gw.response.exit raises this light userdata to end the hook; its address is the token.
char exit_token;

/// A plugin as its table generation holds it. Immutable; any thread.
struct Program {
  std::uint64_t id = 0; // unique per built filter: worker states are keyed by it
  std::string policy;
  std::string chunkname; // "@plugins/x.lua": Lua's messages then start "plugins/x.lua:LINE:"
  std::string source;
  Limits limits;
  bool defines[kHooks] = {}; // on_request, on_response, on_log, on_response_body
  BodyMode body = BodyMode::none;
};

std::atomic<std::uint64_t> next_program_id{1};

/// A reply gw.response.exit asked for.
struct ExitReply {
  bool set = false;
  unsigned status = 0;
  std::string body, content_type;
  HeaderList headers;
};

/// A piece of the response body handed to on_response_body, and what the hook makes of it.
struct BodyPiece {
  std::string* data = nullptr; // replaced by the hook's result when it returns a string
  bool last = false;
  bool head_out = false; // stream mode: the head has gone, so the hook cannot change it
};

/// The hook running now.
struct Call {
  FilterContext* ctx = nullptr;
  Hook hook = Hook::none;
  bool head_out = false;
  ExitReply exit;
};

class Runtime;

/// gw.ctx of one request: a table kept in its runtime's registry until the request's on_log
/// (or until the FilterContext is reset). Worker-local.
struct CtxSlot final : Slot {
  std::weak_ptr<Runtime> runtime;
  std::thread::id owner = std::this_thread::get_id();
  int ref = LUA_NOREF;
  // gw.log lines this request wrote: counted per request, not per call, since on_response_body
  // runs once per piece of a streamed body.
  std::size_t notes = 0;
  ~CtxSlot() override;
};

/// One Lua state with the gw API and a plugin's script loaded. Worker-local.
class Runtime {
public:
  /// A sandbox with the gw API bound (no script yet).
  static Result<std::shared_ptr<Runtime>> make(const std::string& policy, const Limits& limits);

  /// Loads and runs the script's top level.
  Outcome load(std::string_view source, const std::string& chunkname) {
    return box_->load(source, chunkname, true);
  }
  /// Which hooks the script defines; an error when a hook's name holds something else.
  Outcome hooks(bool (&defines)[kHooks]);
  /// Runs one hook for one request (on_response_body with its piece).
  Outcome invoke(Hook h, FilterContext& ctx, BodyPiece* piece = nullptr);

  bool cap_hit() const noexcept { return box_->cap_hit(); }
  ExitReply& exit() noexcept { return call_.exit; }
  void unref(int ref);

  // ---- for the lua_CFunctions of the gw API

  static Runtime& of(lua_State* L) noexcept { return *static_cast<Runtime*>(Sandbox::of(L).user); }
  /// The running hook's context; raises a Lua error outside the hooks in `allowed`.
  FilterContext& need(lua_State* L, const char* fn, unsigned allowed);
  Call& call() noexcept { return call_; }
  const std::string& policy() const noexcept { return policy_; }
  /// `s` lowercased, in a buffer reused by every call.
  const std::string& lower(std::string_view s);
  /// gw.ctx's slot for this request (made or replaced when it is not this runtime's).
  CtxSlot& ctx_slot();
  /// The request's headers, for get_headers (views into the request).
  const std::vector<std::pair<std::string_view, std::string_view>>& headers();
  /// The decoded query parameters, for get_query; get_query_arg's match.
  const std::vector<std::pair<std::string, std::string>>& query();
  const std::string* query_arg(std::string_view name);
  std::string& line() noexcept { return line_; }
  void note_line();
  json& json_scratch() noexcept { return json_; }
  /// Called before the hook's first change to the request's edits, so that a hook that fails
  /// changes nothing (the 500 it causes carries no half of a script's headers).
  void save_edits(const FilterContext& c) {
    if (!saved_) saved_ = c.edits;
  }
  std::string& error_text() noexcept { return error_; }

private:
  explicit Runtime(std::string policy) : policy_(std::move(policy)) {}

  std::unique_ptr<Sandbox> box_;
  std::weak_ptr<Runtime> self_;
  std::string policy_;
  Call call_;
  bool running_ = false;
  std::optional<Edits> saved_;
  // Scratch space for the API functions (see the file comment).
  std::string lower_, line_, error_;
  std::vector<std::pair<std::string_view, std::string_view>> headers_;
  std::vector<std::pair<std::string, std::string>> query_;
  json json_;
};

CtxSlot::~CtxSlot() {
  // Only on the worker that made it (where its runtime lives), and only while its runtime does.
  if (ref == LUA_NOREF || owner != std::this_thread::get_id()) return;
  if (auto rt = runtime.lock()) rt->unref(ref);
}

// ---- checks the API functions share (each returns an error message, or null)

const char* check_name(std::string_view name) {
  if (!text::is_token(name)) return "is not a valid header name";
  if (managed_by_proxy(name)) return "is managed by the proxy";
  return nullptr;
}

const char* check_value(std::string_view value) {
  if (value.size() > kMaxValue) return "value is longer than 16KiB";
  if (!valid_header_value(value)) return "value contains control characters (CR, LF, NUL...)";
  return nullptr;
}

/// "FN: "NAME" WHY", in the runtime's error buffer: a message built before luaL_error, which
/// would skip the destructors of temporaries built in its own arguments.
const char* bad_name(Runtime& rt, const char* fn, std::string_view name, const char* why) {
  rt.error_text() = std::string(fn) + ": " + text::quote(name) + " " + why;
  return rt.error_text().c_str();
}

/// Removes the fields named `name` (lowercase) from a list.
void erase_named(HeaderList& list, std::string_view name) {
  std::erase_if(list, [&](const auto& kv) { return kv.first == name; });
}

void erase_named(std::vector<std::string>& list, std::string_view name) {
  std::erase_if(list, [&](const std::string& n) { return n == name; });
}

bool contains_name(const std::vector<std::string>& list, std::string_view name) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& n) { return n == name; });
}

/// The ErrorKind whose status a plugin's own reply has, for the access log's `error` (statuses
/// below 400 are not errors; internal is only a placeholder there).
wire::ErrorKind kind_for(unsigned status) {
  switch (status) {
  case 400:
    return wire::ErrorKind::bad_request;
  case 401:
    return wire::ErrorKind::unauthorized;
  case 403:
    return wire::ErrorKind::forbidden;
  case 404:
    return wire::ErrorKind::no_route;
  case 405:
    return wire::ErrorKind::method_not_allowed;
  case 408:
    return wire::ErrorKind::request_timeout;
  case 413:
    return wire::ErrorKind::body_too_large;
  case 429:
    return wire::ErrorKind::rate_limited;
  case 503:
    return wire::ErrorKind::policy_unavailable;
  default:
    return status >= 400 && status < 500 ? wire::ErrorKind::bad_request : wire::ErrorKind::internal;
  }
}

// ---- Runtime

const std::string& Runtime::lower(std::string_view s) {
  lower_.assign(s);
  for (char& c : lower_)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return lower_;
}

FilterContext& Runtime::need(lua_State* L, const char* fn, unsigned allowed) {
  if (!call_.ctx) luaL_error(L, "%s is available only while a hook runs", fn);
  unsigned running = bit(call_.hook);
  if (call_.hook == Hook::body && !call_.head_out) running |= kOnWholeBody;
  if (!(running & allowed)) {
    const char* where = allowed == kOnRequest
                            ? "on_request"
                            : "on_request, on_response and a whole-body on_response_body";
    luaL_error(L, "%s is available only in %s", fn, where);
  }
  return *call_.ctx;
}

CtxSlot& Runtime::ctx_slot() {
  auto& slot = call_.ctx->slot();
  auto* s = dynamic_cast<CtxSlot*>(slot.get());
  if (!s || s->runtime.lock().get() != this || s->owner != std::this_thread::get_id()) {
    auto fresh = std::make_unique<CtxSlot>();
    fresh->runtime = self_;
    s = fresh.get();
    slot = std::move(fresh);
  }
  return *s;
}

const std::vector<std::pair<std::string_view, std::string_view>>& Runtime::headers() {
  headers_.clear();
  call_.ctx->request->for_each_header(
      [&](std::string_view n, std::string_view v) { headers_.emplace_back(n, v); });
  return headers_;
}

const std::vector<std::pair<std::string, std::string>>& Runtime::query() {
  query_.clear();
  uri::for_each_query_param(call_.ctx->request->query(),
                            [&](std::string_view n, std::string_view v) {
                              query_.emplace_back(n, v);
                              return true;
                            });
  return query_;
}

const std::string* Runtime::query_arg(std::string_view name) {
  const std::string* found = nullptr;
  query_.clear();
  uri::for_each_query_param(call_.ctx->request->query(),
                            [&](std::string_view n, std::string_view v) {
                              if (n != name) return true;
                              query_.emplace_back(n, v);
                              found = &query_.back().second;
                              return false;
                            });
  return found;
}

void Runtime::note_line() {
  if (!call_.ctx) return; // gw.log at the top level, while the script loads: nowhere to write
  std::size_t& notes = ctx_slot().notes;
  if (++notes > kMaxNotes) {
    if (notes == kMaxNotes + 1)
      call_.ctx->note("plugin " + policy_ + ": more than " + std::to_string(kMaxNotes) +
                      " log lines in one request; the rest are dropped");
    return;
  }
  // One line per call, whatever the script wrote: control characters would split or forge log
  // lines.
  if (line_.size() > kMaxNoteBytes) {
    line_.resize(kMaxNoteBytes);
    line_ += "...";
  }
  for (char& c : line_)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  call_.ctx->note("plugin " + policy_ + ": " + line_);
}

// ---- the gw API

int push_view(lua_State* L, std::string_view s) {
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

std::string_view arg_string(lua_State* L, int i) {
  std::size_t n = 0;
  const char* p = luaL_checklstring(L, i, &n);
  return {p, n};
}

// gw.request

int request_get_header(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.request.get_header", kAnyHook);
  const std::string_view name = arg_string(L, 1);
  const auto v = c.request->header(rt.lower(name));
  if (!v) {
    lua_pushnil(L);
    return 1;
  }
  return push_view(L, *v);
}

int request_get_headers(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  rt.need(L, "gw.request.get_headers", kAnyHook);
  const lua_Integer max = luaL_optinteger(L, 1, 100);
  luaL_argcheck(L, max >= 1 && max <= 1000, 1, "max_headers must be from 1 to 1000");
  const auto& hs = rt.headers();
  lua_createtable(L, 0, static_cast<int>(std::min<std::size_t>(hs.size(), 64)));
  const std::size_t n = std::min(hs.size(), static_cast<std::size_t>(max));
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& name = rt.lower(hs[i].first); // stays until the next lower()
    lua_pushlstring(L, name.data(), name.size());
    const int type = lua_rawget(L, -2); // [t, old]
    if (type == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlstring(L, name.data(), name.size());
      push_view(L, hs[i].second);
      lua_rawset(L, -3);
    } else if (type == LUA_TSTRING) { // a repeated field: its values become an array
      lua_createtable(L, 2, 0);
      lua_insert(L, -2);
      lua_rawseti(L, -2, 1);
      push_view(L, hs[i].second);
      lua_rawseti(L, -2, 2);
      lua_pushlstring(L, name.data(), name.size());
      lua_insert(L, -2);
      lua_rawset(L, -3);
    } else {
      push_view(L, hs[i].second);
      lua_rawseti(L, -2, static_cast<lua_Integer>(lua_rawlen(L, -2)) + 1);
      lua_pop(L, 1);
    }
  }
  return 1;
}

int request_set_header(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.request.set_header", kOnRequest);
  const std::string_view name = arg_string(L, 1);
  const std::string_view value = arg_string(L, 2);
  if (const char* e = check_name(name))
    return luaL_error(L, "%s", bad_name(rt, "gw.request.set_header", name, e));
  if (const char* e = check_value(value)) return luaL_error(L, "gw.request.set_header: %s", e);
  const std::string& lname = rt.lower(name);
  const bool known = std::any_of(c.edits.set.begin(), c.edits.set.end(),
                                 [&](const auto& kv) { return kv.first == lname; });
  if (!known && c.edits.set.size() >= kMaxEdits)
    return luaL_error(L, "gw.request.set_header: more than %d headers set", int{kMaxEdits});
  rt.save_edits(c);
  // A set header replaces the client's copy (Edits::drops), so an earlier clear is moot.
  erase_named(c.edits.drop, lname);
  c.edits.set_header(lname, std::string(value));
  return 0;
}

int request_clear_header(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.request.clear_header", kOnRequest);
  const std::string_view name = arg_string(L, 1);
  if (const char* e = check_name(name))
    return luaL_error(L, "%s", bad_name(rt, "gw.request.clear_header", name, e));
  const std::string& lname = rt.lower(name);
  rt.save_edits(c);
  erase_named(c.edits.set, lname);
  if (!contains_name(c.edits.drop, lname)) {
    if (c.edits.drop.size() >= kMaxEdits)
      return luaL_error(L, "gw.request.clear_header: more than %d headers cleared", int{kMaxEdits});
    c.edits.drop.push_back(lname);
  }
  return 0;
}

int request_get_path(lua_State* L) {
  FilterContext& c = Runtime::of(L).need(L, "gw.request.get_path", kAnyHook);
  return push_view(L, c.request->path());
}

/// The canonical form of a path a plugin sets, or an error. The upstream gets the same canonical
/// form a client's path would have (uri/normalize.hpp), so a plugin cannot smuggle dot segments
/// or raw bytes past it.
const char* set_path(Runtime& rt, FilterContext& c, std::string_view path) {
  if (!path.starts_with('/')) return "the path must start with \"/\"";
  if (path.find_first_of("?#") != std::string_view::npos)
    return "the path must not contain \"?\" or \"#\"";
  std::string buf;
  auto t = uri::parse_target(path, buf);
  if (!t) {
    rt.error_text() = t.error().message;
    return rt.error_text().c_str();
  }
  rt.save_edits(c);
  c.edits.path = std::string(t->path);
  return nullptr;
}

int request_set_path(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.request.set_path", kOnRequest);
  const std::string_view path = arg_string(L, 1);
  if (const char* e = set_path(rt, c, path)) return luaL_error(L, "gw.request.set_path: %s", e);
  return 0;
}

int request_get_query_arg(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  rt.need(L, "gw.request.get_query_arg", kAnyHook);
  const std::string* v = rt.query_arg(arg_string(L, 1));
  if (!v) {
    lua_pushnil(L);
    return 1;
  }
  return push_view(L, *v);
}

int request_get_query(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  rt.need(L, "gw.request.get_query", kAnyHook);
  const lua_Integer max = luaL_optinteger(L, 1, 100);
  luaL_argcheck(L, max >= 1 && max <= 1000, 1, "max_args must be from 1 to 1000");
  const auto& q = rt.query();
  lua_createtable(L, 0, static_cast<int>(std::min<std::size_t>(q.size(), 64)));
  const std::size_t n = std::min(q.size(), static_cast<std::size_t>(max));
  for (std::size_t i = 0; i < n; ++i) {
    push_view(L, q[i].first);
    const int type = lua_rawget(L, -2);
    if (type == LUA_TNIL) {
      lua_pop(L, 1);
      push_view(L, q[i].first);
      push_view(L, q[i].second);
      lua_rawset(L, -3);
    } else if (type == LUA_TSTRING) {
      lua_createtable(L, 2, 0);
      lua_insert(L, -2);
      lua_rawseti(L, -2, 1);
      push_view(L, q[i].second);
      lua_rawseti(L, -2, 2);
      push_view(L, q[i].first);
      lua_insert(L, -2);
      lua_rawset(L, -3);
    } else {
      push_view(L, q[i].second);
      lua_rawseti(L, -2, static_cast<lua_Integer>(lua_rawlen(L, -2)) + 1);
      lua_pop(L, 1);
    }
  }
  return 1;
}

int request_get_raw_query(lua_State* L) {
  FilterContext& c = Runtime::of(L).need(L, "gw.request.get_raw_query", kAnyHook);
  return push_view(L, c.request->query());
}

int request_get_method(lua_State* L) {
  FilterContext& c = Runtime::of(L).need(L, "gw.request.get_method", kAnyHook);
  return push_view(L, c.request->method());
}

int request_get_host(lua_State* L) {
  FilterContext& c = Runtime::of(L).need(L, "gw.request.get_host", kAnyHook);
  return push_view(L, c.request->host());
}

int request_get_client_ip(lua_State* L) {
  FilterContext& c = Runtime::of(L).need(L, "gw.request.get_client_ip", kAnyHook);
  return push_view(L, c.request->client_ip());
}

int request_get_id(lua_State* L) {
  FilterContext& c = Runtime::of(L).need(L, "gw.request.get_id", kAnyHook);
  return push_view(L, c.request->request_id());
}

// gw.response

int response_set_header(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.response.set_header", kBeforeHead);
  const std::string_view name = arg_string(L, 1);
  const std::string_view value = arg_string(L, 2);
  if (const char* e = check_name(name))
    return luaL_error(L, "%s", bad_name(rt, "gw.response.set_header", name, e));
  if (const char* e = check_value(value)) return luaL_error(L, "gw.response.set_header: %s", e);
  const std::string& lname = rt.lower(name);
  rt.save_edits(c);
  for (auto& kv : c.edits.response_set)
    if (kv.first == lname) {
      kv.second.assign(value);
      return 0;
    }
  if (c.edits.response_set.size() >= kMaxEdits)
    return luaL_error(L, "gw.response.set_header: more than %d headers set", int{kMaxEdits});
  erase_named(c.edits.response_remove, lname);
  c.edits.response_set.emplace_back(lname, value);
  return 0;
}

int response_add_header(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.response.add_header", kBeforeHead);
  const std::string_view name = arg_string(L, 1);
  const std::string_view value = arg_string(L, 2);
  if (const char* e = check_name(name))
    return luaL_error(L, "%s", bad_name(rt, "gw.response.add_header", name, e));
  if (const char* e = check_value(value)) return luaL_error(L, "gw.response.add_header: %s", e);
  if (c.edits.response_add.size() >= kMaxEdits)
    return luaL_error(L, "gw.response.add_header: more than %d headers added", int{kMaxEdits});
  rt.save_edits(c);
  c.edits.response_add.emplace_back(rt.lower(name), value);
  return 0;
}

int response_clear_header(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.response.clear_header", kBeforeHead);
  const std::string_view name = arg_string(L, 1);
  if (const char* e = check_name(name))
    return luaL_error(L, "%s", bad_name(rt, "gw.response.clear_header", name, e));
  const std::string& lname = rt.lower(name);
  rt.save_edits(c);
  erase_named(c.edits.response_set, lname);
  erase_named(c.edits.response_add, lname);
  if (!contains_name(c.edits.response_remove, lname)) {
    if (c.edits.response_remove.size() >= kMaxEdits)
      return luaL_error(L, "gw.response.clear_header: more than %d headers cleared",
                        int{kMaxEdits});
    c.edits.response_remove.push_back(lname);
  }
  return 0;
}

int response_get_status(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.response.get_status", kAnyHook);
  unsigned status = 0;
  if (rt.call().hook == Hook::log && c.status)
    status = c.status; // what the client got
  else if (c.response)
    status = c.response->status();
  if (status == 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, static_cast<lua_Integer>(status));
  return 1;
}

int response_get_header(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  FilterContext& c = rt.need(L, "gw.response.get_header", kAnyHook);
  const std::string_view name = arg_string(L, 1);
  if (!c.response) {
    lua_pushnil(L);
    return 1;
  }
  const auto v = c.response->header(rt.lower(name));
  if (!v) {
    lua_pushnil(L);
    return 1;
  }
  return push_view(L, *v);
}

/// Adds one of exit's headers; an error message or null.
const char* add_exit_header(Runtime& rt, std::string_view name, std::string_view value) {
  ExitReply& x = rt.exit();
  if (const char* e = check_name(name)) {
    rt.error_text() = text::quote(name) + " " + e;
    return rt.error_text().c_str();
  }
  if (const char* e = check_value(value)) return e;
  const std::string& lname = rt.lower(name);
  if (lname == "content-type") {
    x.content_type.assign(value);
    return nullptr;
  }
  if (x.headers.size() >= kMaxEdits) return "more than 100 headers";
  x.headers.emplace_back(lname, value);
  return nullptr;
}

/// A Lua value as JSON, into `out`; an error message or null. A table whose keys are exactly
/// 1..n is an array, any other table an object (an empty one too, as Kong's cjson does).
const char* to_json(lua_State* L, int idx, json& out, int depth) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    out = nullptr;
    return nullptr;
  case LUA_TBOOLEAN:
    out = lua_toboolean(L, idx) != 0;
    return nullptr;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      out = static_cast<std::int64_t>(lua_tointeger(L, idx));
    else
      out = static_cast<double>(lua_tonumber(L, idx));
    return nullptr;
  case LUA_TSTRING: {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);
    out = std::string(s, n);
    return nullptr;
  }
  case LUA_TTABLE:
    break;
  default:
    return "only nil, booleans, numbers, strings and tables can be sent as JSON";
  }
  if (depth >= kMaxJsonDepth) return "tables are nested too deeply for JSON";
  if (!lua_checkstack(L, 3)) return "tables are nested too deeply for JSON";
  idx = lua_absindex(L, idx);
  const auto len = static_cast<lua_Integer>(lua_rawlen(L, idx));
  lua_Integer keys = 0;
  bool array = len > 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    ++keys;
    if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > len)
      array = false;
    lua_pop(L, 1);
  }
  array = array && keys == len;
  if (array) {
    out = json::array();
    for (lua_Integer i = 1; i <= len; ++i) {
      lua_rawgeti(L, idx, i);
      out.push_back(nullptr);
      const char* e = to_json(L, -1, out.back(), depth + 1);
      lua_pop(L, 1);
      if (e) return e;
    }
    return nullptr;
  }
  out = json::object();
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char* e = nullptr;
    if (lua_type(L, -2) == LUA_TSTRING) {
      std::size_t n = 0;
      const char* k = lua_tolstring(L, -2, &n);
      e = to_json(L, -1, out[std::string(k, n)], depth + 1);
    } else if (lua_isinteger(L, -2)) {
      e = to_json(L, -1, out[std::to_string(lua_tointeger(L, -2))], depth + 1);
    } else {
      e = "JSON object keys must be strings or integers";
    }
    lua_pop(L, 1);
    if (e) {
      lua_pop(L, 1); // the key
      return e;
    }
  }
  return nullptr;
}

const char* encode_body(Runtime& rt, lua_State* L, int idx) {
  json& j = rt.json_scratch();
  const char* e = to_json(L, idx, j, 0);
  if (!e) rt.exit().body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  j = nullptr;
  return e;
}

int response_exit(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  rt.need(L, "gw.response.exit", kBeforeHead);
  const lua_Integer status = luaL_checkinteger(L, 1);
  // 1xx answers are interim, never the final one.
  luaL_argcheck(L, status >= 200 && status <= 599, 1, "status must be from 200 to 599");
  ExitReply& x = rt.exit();
  x.set = false;
  x.status = static_cast<unsigned>(status);
  x.body.clear();
  x.content_type.clear();
  x.headers.clear();
  switch (lua_type(L, 2)) {
  case LUA_TNONE:
  case LUA_TNIL:
    break;
  case LUA_TSTRING:
  case LUA_TNUMBER: {
    std::size_t n = 0;
    const char* b = lua_tolstring(L, 2, &n);
    x.body.assign(b, n);
    x.content_type = "text/plain; charset=utf-8";
    break;
  }
  case LUA_TTABLE:
    if (const char* e = encode_body(rt, L, 2)) return luaL_error(L, "gw.response.exit: %s", e);
    x.content_type = "application/json";
    break;
  default:
    return luaL_argerror(L, 2, "the body must be a string, a table (sent as JSON) or nil");
  }
  if ((status == 204 || status == 304) && !x.body.empty())
    return luaL_error(L, "gw.response.exit: a %d reply has no body", static_cast<int>(status));
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING)
        return luaL_error(L, "gw.response.exit: header names must be strings");
      std::size_t nn = 0;
      const char* name = lua_tolstring(L, -2, &nn);
      const int vt = lua_type(L, -1);
      const char* e = nullptr;
      if (vt == LUA_TSTRING || vt == LUA_TNUMBER) {
        std::size_t vn = 0;
        const char* v = lua_tolstring(L, -1, &vn); // the value, never the key, may be converted
        e = add_exit_header(rt, {name, nn}, {v, vn});
      } else if (vt == LUA_TTABLE) { // several fields of one name
        const auto n = static_cast<lua_Integer>(lua_rawlen(L, -1));
        for (lua_Integer i = 1; i <= n && !e; ++i) {
          const int it = lua_rawgeti(L, -1, i);
          if (it != LUA_TSTRING && it != LUA_TNUMBER) {
            e = "header values must be strings or arrays of strings";
          } else {
            std::size_t vn = 0;
            const char* v = lua_tolstring(L, -1, &vn);
            e = add_exit_header(rt, {name, nn}, {v, vn});
          }
          lua_pop(L, 1);
        }
      } else {
        e = "header values must be strings or arrays of strings";
      }
      if (e) return luaL_error(L, "gw.response.exit: %s", e);
      lua_pop(L, 1);
    }
  }
  x.set = true;
  // Ends the hook, as Kong's exit does: code after it does not run. A script that catches this
  // with pcall still gets its reply, once the hook returns.
  lua_pushlightuserdata(L, &exit_token);
  return lua_error(L);
}

// gw

int gw_log(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  const int n = lua_gettop(L);
  rt.line().clear();
  for (int i = 1; i <= n; ++i) {
    std::size_t len = 0;
    const char* s = luaL_tolstring(L, i, &len); // may run a __tostring: still under the budget
    if (i > 1) rt.line() += ' ';
    rt.line().append(s, std::min(len, kMaxNoteBytes + 1));
    lua_pop(L, 1);
  }
  rt.note_line();
  return 0;
}

int gw_now(lua_State* L) {
  FilterContext& c = Runtime::of(L).need(L, "gw.now", kAnyHook);
  lua_pushinteger(L, static_cast<lua_Integer>(c.now_s));
  return 1;
}

int push_ctx(lua_State* L, Runtime& rt) {
  rt.need(L, "gw.ctx", kAnyHook);
  CtxSlot& s = rt.ctx_slot();
  if (s.ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s.ref);
    return 1;
  }
  lua_newtable(L);
  lua_pushvalue(L, -1);
  s.ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/// gw's __index: the fields that change with each request.
int gw_index(lua_State* L) {
  Runtime& rt = Runtime::of(L);
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  const char* key = lua_tostring(L, 2);
  if (std::strcmp(key, "ctx") == 0) return push_ctx(L, rt);
  if (std::strcmp(key, "consumer") == 0) {
    const FilterContext* c = rt.call().ctx;
    if (!c || !c->identity.authenticated || c->identity.consumer.empty()) return 0;
    return push_view(L, c->identity.consumer);
  }
  return 0;
}

int gw_newindex(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING && (std::strcmp(lua_tostring(L, 2), "ctx") == 0 ||
                                        std::strcmp(lua_tostring(L, 2), "consumer") == 0))
    return luaL_error(L, "gw.%s cannot be replaced (set fields of gw.ctx instead)",
                      lua_tostring(L, 2));
  lua_rawset(L, 1);
  return 0;
}

int route_index(lua_State* L) {
  const FilterContext* c = Runtime::of(L).call().ctx;
  if (!c || lua_type(L, 2) != LUA_TSTRING || std::strcmp(lua_tostring(L, 2), "name") != 0) return 0;
  return push_view(L, c->route);
}

int bind_api(lua_State* L) {
  static constexpr luaL_Reg kRequest[] = {{"get_header", request_get_header},
                                          {"get_headers", request_get_headers},
                                          {"set_header", request_set_header},
                                          {"clear_header", request_clear_header},
                                          {"get_path", request_get_path},
                                          {"set_path", request_set_path},
                                          {"get_query_arg", request_get_query_arg},
                                          {"get_query", request_get_query},
                                          {"get_raw_query", request_get_raw_query},
                                          {"get_method", request_get_method},
                                          {"get_host", request_get_host},
                                          {"get_client_ip", request_get_client_ip},
                                          {"get_id", request_get_id},
                                          {nullptr, nullptr}};
  static constexpr luaL_Reg kResponse[] = {{"set_header", response_set_header},
                                           {"add_header", response_add_header},
                                           {"clear_header", response_clear_header},
                                           {"get_status", response_get_status},
                                           {"get_header", response_get_header},
                                           {"exit", response_exit},
                                           {nullptr, nullptr}};
  lua_createtable(L, 0, 6); // gw
  lua_createtable(L, 0, 16);
  luaL_setfuncs(L, kRequest, 0);
  lua_setfield(L, -2, "request");
  lua_createtable(L, 0, 8);
  luaL_setfuncs(L, kResponse, 0);
  lua_setfield(L, -2, "response");
  lua_createtable(L, 0, 0); // gw.route, whose name is read per request
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, route_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "route");
  lua_pushcfunction(L, gw_log);
  lua_setfield(L, -2, "log");
  lua_pushcfunction(L, gw_now);
  lua_setfield(L, -2, "now");
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, gw_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gw_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
  lua_setglobal(L, "gw");
  // print goes where gw.log goes (Kong's print ends up in the error log too).
  lua_pushcfunction(L, gw_log);
  lua_setglobal(L, "print");
  return 0;
}

struct HookArgs {
  bool* defines;
};

int check_hooks(lua_State* L) {
  auto* a = static_cast<HookArgs*>(lua_touserdata(L, 1));
  for (int i = 0; i < kHooks; ++i) {
    const int t = lua_getglobal(L, kHookNames[i + 1]);
    a->defines[i] = t == LUA_TFUNCTION;
    if (t != LUA_TFUNCTION && t != LUA_TNIL)
      return luaL_error(L, "%s must be a function (it is a %s)", kHookNames[i + 1],
                        lua_typename(L, t));
    lua_pop(L, 1);
  }
  return 0;
}

int call_hook(lua_State* L) {
  const char* name = static_cast<const char*>(lua_touserdata(L, 1));
  if (lua_getglobal(L, name) != LUA_TFUNCTION) return 0;
  lua_call(L, 0, 0);
  return 0;
}

/// on_response_body(chunk, last): its string result replaces the piece; nil keeps it.
int call_body_hook(lua_State* L) {
  auto* piece = static_cast<BodyPiece*>(lua_touserdata(L, 1));
  if (lua_getglobal(L, "on_response_body") != LUA_TFUNCTION) return 0;
  lua_pushlstring(L, piece->data->data(), piece->data->size());
  lua_pushboolean(L, piece->last);
  lua_call(L, 2, 1);
  const int t = lua_type(L, -1);
  if (t == LUA_TNIL) return 0;
  if (t != LUA_TSTRING)
    return luaL_error(L, "on_response_body must return a string or nil (it returned a %s)",
                      lua_typename(L, t));
  std::size_t n = 0;
  const char* s = lua_tolstring(L, -1, &n);
  // The last thing this call does: nothing of Lua's may raise after the piece has changed.
  piece->data->assign(s, n);
  return 0;
}

int unref_ctx(lua_State* L) {
  const int ref = *static_cast<int*>(lua_touserdata(L, 1));
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  return 0;
}

Result<std::shared_ptr<Runtime>> Runtime::make(const std::string& policy, const Limits& limits) {
  auto box = Sandbox::create(limits);
  if (!box) return std::unexpected(box.error());
  std::shared_ptr<Runtime> rt(new Runtime(policy));
  rt->box_ = std::move(*box);
  rt->box_->user = rt.get();
  rt->self_ = rt;
  if (auto o = rt->box_->run(bind_api, nullptr); !o.ok())
    return fail(errc::too_large, "max_memory " + units::format_size(limits.memory) +
                                     " cannot hold the gw API: " + o.message);
  return rt;
}

Outcome Runtime::hooks(bool (&defines)[kHooks]) {
  HookArgs a{defines};
  return box_->run(check_hooks, &a);
}

Outcome Runtime::invoke(Hook h, FilterContext& ctx, BodyPiece* piece) {
  call_.ctx = &ctx;
  call_.hook = h;
  call_.head_out = piece && piece->head_out;
  call_.exit = ExitReply{};
  saved_.reset();
  running_ = true;
  Outcome o = piece ? box_->run(call_body_hook, piece)
                    : box_->run(call_hook, const_cast<char*>(kHookNames[static_cast<int>(h)]));
  running_ = false;
  const bool exited = o.status == Outcome::Status::error && o.token == &exit_token;
  if (!o.ok() && !exited && saved_) ctx.edits = std::move(*saved_);
  saved_.reset();
  call_.ctx = nullptr;
  call_.hook = Hook::none;
  call_.head_out = false;
  return o;
}

void Runtime::unref(int ref) {
  // Never inside a hook (the stack belongs to it); the reference then lives on with the state.
  if (running_ || ref == LUA_NOREF) return;
  box_->run(unref_ctx, &ref);
}

// ---- the worker's states

struct Cached {
  std::weak_ptr<const Program> program;
  std::shared_ptr<Runtime> runtime;
};

/// This thread's Lua states, by Program id: ids are never reused (unlike addresses), so a new
/// generation's filter can never pick up an old state.
std::unordered_map<std::uint64_t, Cached>& worker_cache() {
  thread_local std::unordered_map<std::uint64_t, Cached> cache;
  return cache;
}

void sweep(std::unordered_map<std::uint64_t, Cached>& cache) {
  std::erase_if(cache, [](const auto& kv) { return kv.second.program.expired(); });
}

std::shared_ptr<Runtime> worker_runtime(const std::shared_ptr<const Program>& p,
                                        std::string& error) {
  auto& cache = worker_cache();
  if (auto it = cache.find(p->id); it != cache.end()) return it->second.runtime;
  // A miss means a new generation (or a state dropped after it filled up): the states of
  // filters that no longer exist go now, so a worker holds at most one state per live plugin.
  sweep(cache);
  auto rt = Runtime::make(p->policy, p->limits);
  if (!rt) {
    error = rt.error().message;
    return nullptr;
  }
  if (auto o = (*rt)->load(p->source, p->chunkname); !o.ok()) {
    error = "loading the script: " + o.message;
    return nullptr;
  }
  cache.emplace(p->id, Cached{p, *rt});
  return *rt;
}

// ---- the filter

/// Runs a Lua plugin's hooks. Immutable; any thread (each thread runs its own Lua state).
class LuaFilter final : public Filter {
public:
  explicit LuaFilter(std::shared_ptr<const Program> p) : program_(std::move(p)) {}

  Verdict on_request(FilterContext& ctx) const override { return run(Hook::request, ctx); }
  Verdict on_response(FilterContext& ctx) const override { return run(Hook::response, ctx); }
  BodyMode response_body() const noexcept override { return program_->body; }
  Verdict on_response_body(FilterContext& ctx, std::string& data, bool last) const override {
    if (program_->body == BodyMode::none) return Verdict::proceed();
    BodyPiece piece{&data, last, program_->body == BodyMode::stream};
    return run(Hook::body, ctx, &piece);
  }
  void on_log(FilterContext& ctx) const override {
    run(Hook::log, ctx);
    // gw.ctx lives until the request's last hook.
    ctx.slot().reset();
  }

private:
  Verdict run(Hook h, FilterContext& ctx, BodyPiece* piece = nullptr) const;
  Verdict failed(FilterContext& ctx, Hook h, const std::string& why, bool head_out = false) const;

  std::shared_ptr<const Program> program_;
};

Verdict LuaFilter::failed(FilterContext& ctx, Hook h, const std::string& why, bool head_out) const {
  const std::string detail = std::string(kHookNames[static_cast<int>(h)]) + ": " + why;
  // Limited: a broken script fails every request, and each one's detail is in the access log.
  // Once the head has gone the reply below cannot be sent: the proxy ends the response by
  // closing the connection, which the line says.
  ctx.note("plugin " + program_->policy + " failed: " + detail +
               (head_out ? " (the response is cut short)" : ""),
           true);
  if (ctx.counters) ++ctx.counters->lua_errors;
  LocalReply r;
  r.kind = wire::ErrorKind::internal;
  r.message = "plugin " + program_->policy + " failed";
  r.detail = detail;
  return Verdict::respond(std::move(r));
}

Verdict LuaFilter::run(Hook h, FilterContext& ctx, BodyPiece* piece) const {
  // Hooks the script does not define cost nothing: no state is made for them.
  if (!program_->defines[static_cast<int>(h) - 1]) return Verdict::proceed();
  const bool head_out = piece && piece->head_out;
  std::string error;
  const auto rt = worker_runtime(program_, error);
  if (!rt) return failed(ctx, h, error, head_out);
  const Outcome o = rt->invoke(h, ctx, piece);
  const bool exited = o.ok() || (o.status == Outcome::Status::error && o.token == &exit_token);
  if (exited) {
    ExitReply& x = rt->exit();
    if (!x.set) return Verdict::proceed();
    LocalReply r;
    r.status = x.status;
    r.kind = kind_for(x.status);
    r.body = std::move(x.body);
    r.content_type = std::move(x.content_type);
    r.headers = std::move(x.headers);
    r.message = "plugin " + program_->policy + " answered";
    x = ExitReply{};
    return Verdict::respond(std::move(r));
  }
  // A state that ran out of memory may stay full (a script's globals): the next call starts
  // from a fresh one. Other errors leave a consistent state behind, as Lua guarantees.
  if (o.status == Outcome::Status::memory || rt->cap_hit()) worker_cache().erase(program_->id);
  return failed(ctx, h, o.message, head_out);
}

// ---- settings

/// A script's problem at its own file:line.
void script_error(Diagnostics& diags, const Context& ctx, const char* code, const std::string& file,
                  const Outcome& o, const std::string& what) {
  const auto at = lua::locate(o.message, file);
  auto& d = diags.error(code, SourceLoc{file, at.line, 0},
                        "policy " + text::quote(ctx.policy) + ": " + what + ": " + at.text);
  if (ctx.loc.line)
    d.with_hint("the script of policy " + text::quote(ctx.policy) + ", named at " +
                std::string(ctx.loc.file) + ":" + std::to_string(ctx.loc.line));
}

std::optional<json> compile_lua(const json& settings, const Context& ctx, Diagnostics& diags) {
  Fields f(settings, ctx, &diags);
  f.kind_ = "lua";
  if (!settings.is_object()) {
    f.error("", "settings must be a table");
    return std::nullopt;
  }
  const auto script = f.str("script");
  if (!script && !f.has("script"))
    f.error("", "has no script (script = \"plugins/NAME.lua\")", "spec.missing-key");
  else if (script && script->empty())
    f.error("script", "script must name a Lua file");
  Limits limits;
  if (auto v = f.integer("max_instructions", 1000, 1'000'000'000))
    limits.instructions = static_cast<std::uint64_t>(*v);
  if (auto v = f.str("max_memory")) {
    auto size = units::parse_size(*v);
    if (!size)
      f.error("max_memory", "max_memory: " + size.error().message);
    else if (*size < kMinMemory || *size > kMaxMemory)
      f.error("max_memory", "max_memory must be from 256KiB to 1GiB");
    else
      limits.memory = *size;
  }
  const auto body = f.str("response_body");
  if (body && *body != "stream" && *body != "whole")
    f.error("response_body", "response_body must be \"stream\" (each piece as it arrives) or "
                             "\"whole\" (the whole body at once)");
  f.finish();
  if (!f.ok() || !script || script->empty()) return std::nullopt;

  const std::string path = resolve(ctx, *script).string();
  auto source = file::read_all(path, kMaxScript);
  if (!source) {
    f.error("script", "script " + path + ": " + source.error().message, "input.unreadable");
    return std::nullopt;
  }
  if (source->starts_with('\x1b')) {
    f.error("script",
            "script " + path +
                " is Lua bytecode: give its source; gw never loads "
                "bytecode, which Lua does not verify",
            "policy.lua-bytecode");
    return std::nullopt;
  }
  // The script is compiled and its top level run here, in a sandbox like gwd's, so that syntax
  // errors and failures at load time are reported at the script's own file:line.
  auto rt = Runtime::make(std::string(ctx.policy), limits);
  if (!rt) {
    f.error("max_memory", rt.error().message);
    return std::nullopt;
  }
  const Outcome loaded = (*rt)->load(*source, "@" + path);
  if (loaded.status == Outcome::Status::syntax) {
    script_error(diags, ctx, "policy.lua-syntax", path, loaded, "script does not compile");
    return std::nullopt;
  }
  if (!loaded.ok()) {
    script_error(diags, ctx, "policy.lua-error", path, loaded, "script fails when loaded");
    return std::nullopt;
  }
  bool defines[kHooks] = {};
  if (const Outcome o = (*rt)->hooks(defines); !o.ok()) {
    diags.error("policy.lua-error", SourceLoc{path, 0, 0},
                "policy " + text::quote(ctx.policy) + ": " + o.message);
    return std::nullopt;
  }
  const bool body_hook = defines[static_cast<int>(Hook::body) - 1];
  if (body && !body_hook) {
    f.error("response_body",
            "response_body = " + text::quote(*body) + " but script " + path +
                " defines no on_response_body",
            "policy.lua-no-body-hook");
    return std::nullopt;
  }
  if (!body && body_hook)
    f.warn("script",
           "script " + path +
               " defines on_response_body, which is never called without response_body = "
               "\"stream\" or \"whole\"",
           "policy.lua-body-unused");
  if (std::none_of(std::begin(defines), std::end(defines), [](bool d) { return d; }))
    f.warn("script",
           "script " + path +
               " defines none of on_request, on_response, on_response_body, on_log: it does "
               "nothing",
           "policy.lua-no-hooks");

  json canonical = settings;
  canonical["script"] = *script; // as written: the table must not depend on where gwctl ran
  canonical["source"] = std::move(*source);
  canonical["max_instructions"] = limits.instructions;
  canonical["max_memory"] = limits.memory;
  return canonical;
}

Result<std::shared_ptr<const Filter>> build_lua(const BuildContext& bc) {
  const json j = json::parse(bc.settings, nullptr, false);
  const std::string who = "policy " + text::quote(bc.policy);
  const auto str = [&](const char* key) -> const json* {
    auto it = j.is_object() ? j.find(key) : j.end();
    return it != j.end() && it->is_string() ? &*it : nullptr;
  };
  const auto uint = [&](const char* key) -> std::optional<std::uint64_t> {
    auto it = j.is_object() ? j.find(key) : j.end();
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<std::uint64_t>();
  };
  const json* script = str("script");
  const json* source = str("source");
  const auto instructions = uint("max_instructions");
  const auto memory = uint("max_memory");
  if (!script || !source || !instructions || !memory || *instructions == 0 || *memory < kMinMemory)
    return fail(errc::invalid_argument, who + ": lua settings lack script, source or limits");
  BodyMode body = BodyMode::none;
  if (j.contains("response_body")) {
    const json* mode = str("response_body");
    if (mode && *mode == "stream")
      body = BodyMode::stream;
    else if (mode && *mode == "whole")
      body = BodyMode::whole;
    else
      return fail(errc::invalid_argument, who + ": response_body must be \"stream\" or \"whole\"");
  }

  auto p = std::make_shared<Program>();
  p->id = next_program_id.fetch_add(1, std::memory_order_relaxed);
  p->policy = std::string(bc.policy);
  p->chunkname = "@" + script->get<std::string>();
  p->source = source->get<std::string>();
  p->limits = Limits{*instructions, *memory};
  p->body = body;
  // Loaded once here, in a throwaway state, so that a table whose script cannot load is refused
  // by the reload rather than failing every request; each worker then loads its own.
  auto rt = Runtime::make(p->policy, p->limits);
  if (!rt) return fail(errc::invalid_argument, who + ": " + rt.error().message);
  if (const Outcome o = (*rt)->load(p->source, p->chunkname); !o.ok())
    return fail(errc::invalid_argument, who + ": the script fails when loaded: " + o.message);
  if (const Outcome o = (*rt)->hooks(p->defines); !o.ok())
    return fail(errc::invalid_argument, who + ": " + o.message);
  if (body != BodyMode::none && !p->defines[static_cast<int>(Hook::body) - 1])
    return fail(errc::invalid_argument, who + ": response_body is set but the script defines no "
                                              "on_response_body");
  return std::shared_ptr<const Filter>(std::make_shared<const LuaFilter>(std::move(p)));
}

} // namespace

const KindInfo kLuaKind = {
    /*name=*/"lua",
    /*phase=*/Phase::plugin,
    /*authenticates=*/false,
    /*composite=*/false,
    /*schema=*/kSchema,
    /*compile=*/compile_lua,
    /*build=*/build_lua,
    /*needs_identity=*/nullptr,
    /*references=*/nullptr,
};

std::size_t lua_worker_states() {
  auto& cache = worker_cache();
  sweep(cache);
  return cache.size();
}

} // namespace gw::policy
