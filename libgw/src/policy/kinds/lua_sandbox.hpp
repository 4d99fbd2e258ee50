// Private: a Lua 5.4 state for untrusted plugin code. It has only the safe parts of the standard
// library (no os, io, package, debug, coroutine; no load, dofile, loadfile, require, string.dump;
// collectgarbage limited to "collect", "count", "step", "isrunning"; no __gc finalizers; string.rep
// and table.move checked so that they cannot spin), a memory cap enforced by its own allocator,
// and an instruction budget per protected run enforced by a count hook. The gw API that plugins
// call is added by lua.cpp.
//
// Errors inside Lua unwind with longjmp (Debian's liblua5.4 is C), which skips C++ destructors:
// every Lua API call that can raise (anything that allocates) runs inside `run`, and the C
// functions that Lua calls keep no object with a destructor alive across such a call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gw/core/error.hpp"

struct lua_State;
struct lua_Debug;

namespace gw::policy::lua {

struct Limits {
  std::uint64_t instructions = 1'000'000; // per hook call (and for the script's top level)
  std::uint64_t memory = 8ULL << 20;      // bytes of the whole state, libraries included
};

/// How a protected run ended.
struct Outcome {
  enum class Status : std::uint8_t { ok, syntax, error, budget, memory };
  Status status = Status::ok;
  std::string message;         // the error value as text ("x.lua:3: boom"), or what ran out
  const void* token = nullptr; // the error value when it was a light userdata (gw's exit)
  bool ok() const noexcept { return status == Status::ok; }
};

/// A sandboxed Lua state. Worker-local: a lua_State is not thread-safe, so each thread that runs
/// a plugin owns its own.
class Sandbox {
public:
  using Fn = int (*)(lua_State*);

  /// A state with the safe libraries open. Errors: errc::too_large when `limits.memory` cannot
  /// hold them.
  static Result<std::unique_ptr<Sandbox>> create(const Limits& limits);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  /// The sandbox a state belongs to (from inside a C function Lua called).
  static Sandbox& of(lua_State* L) noexcept;

  lua_State* state() const noexcept { return L_; }
  const Limits& limits() const noexcept { return limits_; }

  /// Calls `fn` (a C function, given `arg` as a light userdata) in protected mode with a fresh
  /// instruction budget; the stack is emptied afterwards.
  Outcome run(Fn fn, void* arg);
  /// Compiles text (never bytecode) as a chunk named `chunkname` ("@file" for file:line
  /// messages) and, when `execute`, runs it under the budget.
  Outcome load(std::string_view source, const std::string& chunkname, bool execute);

  /// True once an allocation was refused for the cap since the last run started; a state whose
  /// failed run hit the cap is better replaced (its globals may fill it for good).
  bool cap_hit() const noexcept { return cap_hit_; }
  std::uint64_t memory_used() const noexcept { return used_; }

  /// The embedder's data for its C functions.
  void* user = nullptr;

private:
  explicit Sandbox(const Limits& limits) : limits_(limits) {}
  static void* allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept;
  static void count_hook(lua_State* L, lua_Debug* ar);
  void arm();
  Outcome finish(int status);

  lua_State* L_ = nullptr;
  Limits limits_;
  std::uint64_t used_ = 0;
  bool cap_hit_ = false;
  std::int64_t budget_left_ = 0;
  bool budget_out_ = false;
};

/// A Lua error message "NAME:LINE: text" split for a diagnostic: LINE (0 when the message does
/// not start with `name` and a line number) and the text after it.
struct Located {
  std::uint32_t line = 0;
  std::string text;
};
Located locate(std::string_view message, std::string_view name);

} // namespace gw::policy::lua
