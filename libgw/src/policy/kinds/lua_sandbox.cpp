#include "lua_sandbox.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <lua.hpp>

#include "gw/core/units.hpp"

namespace gw::policy::lua {
namespace {

// The count hook fires every kStep instructions: often enough that a blown budget is seen within
// a few microseconds, rarely enough that the hook itself costs nothing measurable.
constexpr std::int64_t kStep = 1000;

// An unprotected error would be a bug in gw (every raising call runs under `run`): abort with
// the message rather than longjmp into nowhere.
int panic(lua_State* L) {
  const char* msg = lua_tostring(L, -1);
  std::fprintf(stderr, "gw: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
  std::abort();
}

/// collectgarbage, without the options that change how the collector runs: "stop" would let a
/// script's garbage grow into the memory cap, and the tuning options belong to gw.
int limited_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "collect") == 0) {
    lua_gc(L, LUA_GCCOLLECT);
    lua_pushinteger(L, 0);
    return 1;
  }
  if (std::strcmp(opt, "count") == 0) {
    const int kb = lua_gc(L, LUA_GCCOUNT);
    const int b = lua_gc(L, LUA_GCCOUNTB);
    lua_pushnumber(L, static_cast<lua_Number>(kb) + static_cast<lua_Number>(b) / 1024);
    return 1;
  }
  if (std::strcmp(opt, "step") == 0) {
    const auto n = static_cast<int>(luaL_optinteger(L, 2, 0));
    lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, n));
    return 1;
  }
  if (std::strcmp(opt, "isrunning") == 0) {
    lua_pushboolean(L, lua_gc(L, LUA_GCISRUNNING));
    return 1;
  }
  return luaL_error(L, "collectgarbage(\"%s\") is not available to plugins", opt);
}

// Library functions run as C, where the count hook never fires: the two that can loop for as
// long as a script asks without allocating (so without meeting the memory cap either) get their
// arguments checked first. Other string searches are bounded by the lengths of their strings.

/// string.rep: repeating an empty string (with an empty separator) 2^62 times allocates nothing
/// and would spin a worker for ever.
int checked_rep(lua_State* L) {
  std::size_t l = 0, lsep = 0;
  luaL_checklstring(L, 1, &l);
  const lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n > 0 && l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/// table.move: moving nils between absent keys allocates nothing, for any count. No table can
/// hold more elements than the memory cap has 8-byte words.
int checked_move(lua_State* L) {
  const lua_Integer f = luaL_checkinteger(L, 2);
  const lua_Integer e = luaL_checkinteger(L, 3);
  const auto most = static_cast<lua_Integer>(Sandbox::of(L).limits().memory / 8);
  luaL_argcheck(L, e < f || e - f < most, 3, "too many elements to move");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/// setmetatable, refusing finalizers: Lua runs __gc with hooks off (during any collection and
/// at lua_close), so a finalizer could loop beyond every budget.
int checked_setmetatable(lua_State* L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    const int t = lua_rawget(L, 2);
    lua_pop(L, 1);
    if (t != LUA_TNIL) return luaL_error(L, "__gc metamethods are not available to plugins");
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/// Replaces lib[name] with `fn`, which gets the original as its upvalue.
void wrap(lua_State* L, const char* lib, const char* name, lua_CFunction fn) {
  lua_getglobal(L, lib);
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

int open_libraries(lua_State* L) {
  // Each library by hand, not luaL_openlibs: io, os, package (require), debug and coroutine are
  // never opened. (Coroutines would also each have their own instruction count.)
  static constexpr luaL_Reg kLibs[] = {{LUA_GNAME, luaopen_base},
                                       {LUA_STRLIBNAME, luaopen_string},
                                       {LUA_TABLIBNAME, luaopen_table},
                                       {LUA_MATHLIBNAME, luaopen_math},
                                       {LUA_UTF8LIBNAME, luaopen_utf8}};
  for (const auto& lib : kLibs) {
    luaL_requiref(L, lib.name, lib.func, 1);
    lua_pop(L, 1);
  }
  // Base functions that reach files, compile code at run time (text or bytecode) or write to
  // gwd's standard error. print is added back by the gw API, writing to gwd's log.
  for (const char* name : {"dofile", "loadfile", "load", "print", "warn"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_pushcfunction(L, limited_collectgarbage);
  lua_setglobal(L, "collectgarbage");
  // string.dump makes bytecode, which is never loaded, and exposes function internals.
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, checked_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  wrap(L, LUA_STRLIBNAME, "rep", checked_rep);
  wrap(L, LUA_TABLIBNAME, "move", checked_move);
  return 0;
}

struct LoadArgs {
  std::string_view source;
  const std::string* chunkname;
  bool execute;
  bool syntax_error = false;
};

int load_chunk(lua_State* L) {
  auto* a = static_cast<LoadArgs*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  // Mode "t": text only. Bytecode can crash the VM (it is not verified).
  if (luaL_loadbufferx(L, a->source.data(), a->source.size(), a->chunkname->c_str(), "t") !=
      LUA_OK) {
    a->syntax_error = true;
    return lua_error(L);
  }
  if (a->execute) lua_call(L, 0, 0);
  return 0;
}

} // namespace

void* Sandbox::allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept {
  auto* s = static_cast<Sandbox*>(ud);
  // With ptr null, osize is the kind of object being made, not a size.
  const std::size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    s->used_ -= old;
    return nullptr;
  }
  if (nsize > old && s->used_ - old + nsize > s->limits_.memory) {
    // Lua collects garbage and asks once more before it raises "not enough memory".
    s->cap_hit_ = true;
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) return nsize <= old ? ptr : nullptr; // Lua assumes a shrink never fails
  s->used_ = s->used_ - old + nsize;
  return p;
}

void Sandbox::count_hook(lua_State* L, lua_Debug*) {
  Sandbox& s = of(L);
  s.budget_left_ -=
      std::min<std::int64_t>(kStep, static_cast<std::int64_t>(s.limits_.instructions));
  if (s.budget_left_ > 0 && !s.budget_out_) return;
  s.budget_out_ = true;
  // From now on every instruction raises again, so a script that catches the error with pcall
  // gets nowhere: the run ends at once.
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  luaL_error(L, "instruction budget exhausted");
}

Result<std::unique_ptr<Sandbox>> Sandbox::create(const Limits& limits) {
  std::unique_ptr<Sandbox> s(new Sandbox(limits));
  s->L_ = lua_newstate(&Sandbox::allocate, s.get());
  if (!s->L_)
    return fail(errc::too_large,
                "max_memory " + units::format_size(limits.memory) + " cannot hold a Lua state");
  lua_atpanic(s->L_, panic);
  if (auto o = s->run(open_libraries, nullptr); !o.ok())
    return fail(errc::too_large, "max_memory " + units::format_size(limits.memory) +
                                     " cannot hold Lua's libraries: " + o.message);
  return s;
}

Sandbox::~Sandbox() {
  if (L_) lua_close(L_);
}

Sandbox& Sandbox::of(lua_State* L) noexcept {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return *static_cast<Sandbox*>(ud);
}

void Sandbox::arm() {
  budget_left_ = static_cast<std::int64_t>(limits_.instructions);
  budget_out_ = false;
  cap_hit_ = false;
  lua_sethook(L_, count_hook, LUA_MASKCOUNT,
              static_cast<int>(std::min<std::uint64_t>(kStep, limits_.instructions)));
}

Outcome Sandbox::finish(int status) {
  Outcome o;
  if (status != LUA_OK) {
    // Only strings and numbers are read as text: a table's __tostring would run script code.
    // Nothing here may allocate inside Lua (this is outside any protected call), so a number is
    // formatted by C++, not converted by lua_tolstring.
    if (lua_type(L_, -1) == LUA_TSTRING) {
      std::size_t n = 0;
      const char* m = lua_tolstring(L_, -1, &n);
      o.message.assign(m, n);
    } else if (lua_isinteger(L_, -1)) {
      o.message = std::to_string(lua_tointeger(L_, -1));
    } else if (lua_type(L_, -1) == LUA_TNUMBER) {
      o.message = std::to_string(lua_tonumber(L_, -1));
    } else if (lua_type(L_, -1) == LUA_TLIGHTUSERDATA) {
      o.token = lua_touserdata(L_, -1);
      o.message = "(a gw exit)";
    } else {
      o.message =
          std::string("(error object is a ") + lua_typename(L_, lua_type(L_, -1)) + " value)";
    }
    o.status = status == LUA_ERRMEM ? Outcome::Status::memory : Outcome::Status::error;
  }
  if (budget_out_) {
    o.status = Outcome::Status::budget;
    o.token = nullptr;
    o.message =
        "instruction budget exhausted (" + std::to_string(limits_.instructions) + " instructions)";
  } else if (o.status == Outcome::Status::memory) {
    o.message = "memory limit exceeded (" + units::format_size(limits_.memory) + ")";
  }
  lua_sethook(L_, nullptr, 0, 0);
  lua_settop(L_, 0);
  return o;
}

Outcome Sandbox::run(Fn fn, void* arg) {
  lua_settop(L_, 0);
  arm();
  // Pushing a C function and a light userdata allocates nothing: the stack always has
  // LUA_MINSTACK free slots.
  lua_pushcfunction(L_, fn);
  lua_pushlightuserdata(L_, arg);
  return finish(lua_pcall(L_, 1, 0, 0));
}

Outcome Sandbox::load(std::string_view source, const std::string& chunkname, bool execute) {
  LoadArgs a{source, &chunkname, execute};
  Outcome o = run(load_chunk, &a);
  if (a.syntax_error && o.status == Outcome::Status::error) o.status = Outcome::Status::syntax;
  return o;
}

Located locate(std::string_view message, std::string_view name) {
  Located out;
  out.text = std::string(message);
  // Lua shortens a long file name in its messages to "..." and its last LUA_IDSIZE - 4 bytes.
  std::string shown(name);
  if (name.size() > LUA_IDSIZE - 1)
    shown = "..." + std::string(name.substr(name.size() - (LUA_IDSIZE - 4)));
  if (!message.starts_with(shown) || message.size() <= shown.size() || message[shown.size()] != ':')
    return out;
  std::string_view rest = message.substr(shown.size() + 1);
  std::uint32_t line = 0;
  const auto r = std::from_chars(rest.data(), rest.data() + rest.size(), line);
  if (r.ec != std::errc{} || r.ptr == rest.data() || r.ptr == rest.data() + rest.size() ||
      *r.ptr != ':')
    return out;
  rest.remove_prefix(static_cast<std::size_t>(r.ptr - rest.data()) + 1);
  if (rest.starts_with(' ')) rest.remove_prefix(1);
  out.line = line;
  out.text = std::string(rest);
  return out;
}

} // namespace gw::policy::lua
