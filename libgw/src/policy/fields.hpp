// Private: what every policy kind's settings reader uses. Typed getters over a policy's JSON
// settings that report wrong types and values at the key's file:line:col, a final check that
// reports every key nobody asked for, the credential and header options several kinds share, and
// the two ways a reader runs: `compile` (a spec's settings, with diagnostics, to canonical JSON)
// and `parse` (canonical JSON to typed settings, for a filter's factory).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/diagnostics.hpp"
#include "gw/core/error.hpp"
#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/policy/kinds.hpp"
#include "gw/policy/settings.hpp"
#include "gw/wire/http_rules.hpp"

namespace gw::policy {
namespace {

using json = nlohmann::json;

constexpr std::uint64_t kMaxPolicyFile = 16ULL << 20;

inline bool valid_header_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}
/// Hop-by-hop and framing headers belong to the proxy: no policy sets, drops or renames them. The
/// hop-by-hop list is the one the session filters with, so nothing a policy adds is dropped.
inline bool managed_by_proxy(std::string_view name) {
  return text::iequals(name, "host") || text::iequals(name, "content-length") ||
         wire::is_hop_by_hop(name);
}

/// Reads one policy's settings: typed getters that report wrong types and values at the key's
/// location, and a final check that reports every key nobody asked for.
class Fields {
public:
  Fields(const json& j, const Context& ctx, Diagnostics* diags) : j_(j), ctx_(ctx), diags_(diags) {}

  bool ok() const noexcept { return ok_; }
  const std::string& first_error() const noexcept { return first_error_; }

  SourceLoc at(std::string_view key) const {
    if (ctx_.locs) {
      if (auto it = ctx_.locs->find("/" + text::pointer_token(key)); it != ctx_.locs->end())
        return it->second;
    }
    return ctx_.loc;
  }

  Diagnostic* error(std::string_view key, std::string msg, const char* code = "policy.invalid") {
    ok_ = false;
    std::string full = "policy " + text::quote(ctx_.policy) + ": " + msg;
    if (first_error_.empty()) first_error_ = full;
    if (!diags_) return nullptr;
    return &diags_->error(code, at(key), std::move(full))
                .at_pointer(key.empty() ? "" : "/" + text::pointer_token(key));
  }

  void warn(std::string_view key, std::string msg, const char* code) {
    if (!diags_) return;
    diags_->warning(code, at(key), "policy " + text::quote(ctx_.policy) + ": " + std::move(msg))
        .at_pointer(key.empty() ? "" : "/" + text::pointer_token(key));
  }

  const json* get(std::string_view key) {
    used_.insert(std::string(key));
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  bool has(std::string_view key) const { return j_.contains(key); }

  std::optional<std::string> str(std::string_view key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      error(key, std::string(key) + " must be a string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }

  /// A string or an array of strings.
  std::optional<std::vector<std::string>> strings(std::string_view key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    std::vector<std::string> out;
    if (v->is_string()) {
      out.push_back(v->get<std::string>());
      return out;
    }
    if (!v->is_array() ||
        !std::all_of(v->begin(), v->end(), [](const json& e) { return e.is_string(); })) {
      error(key, std::string(key) + " must be a string or an array of strings");
      return std::nullopt;
    }
    for (const auto& e : *v)
      out.push_back(e.get<std::string>());
    return out;
  }

  std::optional<bool> boolean(std::string_view key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
      error(key, std::string(key) + " must be true or false");
      return std::nullopt;
    }
    return v->get<bool>();
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer() || v->get<std::int64_t>() < min || v->get<std::int64_t>() > max) {
      error(key, std::string(key) + " must be an integer from " + std::to_string(min) + " to " +
                     std::to_string(max));
      return std::nullopt;
    }
    return v->get<std::int64_t>();
  }

  std::optional<units::Millis> duration(std::string_view key) {
    auto s = str(key);
    if (!s) return std::nullopt;
    auto d = units::parse_duration(*s);
    if (!d) {
      error(key, std::string(key) + ": " + d.error().message);
      return std::nullopt;
    }
    return *d;
  }

  /// A table of strings: `{ x-a = "1" }`, in key order.
  std::optional<std::vector<std::pair<std::string, std::string>>>
  string_table(std::string_view key, const json* from = nullptr, std::string_view what = {}) {
    const json* v = from ? from : get(key);
    if (!v) return std::nullopt;
    const std::string label = what.empty() ? std::string(key) : std::string(what);
    if (!v->is_object()) {
      error(key, label + " must be a table of strings");
      return std::nullopt;
    }
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it.value().is_string()) {
        error(key, label + "." + it.key() + " must be a string");
        continue;
      }
      out.emplace_back(it.key(), it.value().get<std::string>());
    }
    return out;
  }

  /// Reports keys that no getter asked for, with a did-you-mean.
  void finish() {
    std::vector<std::string> known(used_.begin(), used_.end());
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (used_.count(it.key())) continue;
      auto* d = error(
          it.key(), "unknown setting " + text::quote(it.key()) + " for kind " + text::quote(kind_),
          "spec.unknown-key");
      if (!d) continue;
      if (auto s = text::suggest(it.key(), std::span<const std::string>(known)))
        d->with_hint("did you mean \"" + *s + "\"?");
      else
        d->with_hint(kind_ + " takes: " + text::join(known, ", "));
    }
  }

  std::string kind_;
  const Context& ctx() const noexcept { return ctx_; }

private:
  const json& j_;
  const Context& ctx_;
  Diagnostics* diags_;
  std::set<std::string> used_{"kind"};
  bool ok_ = true;
  std::string first_error_;
};

inline std::filesystem::path resolve(const Context& ctx, const std::string& file) {
  const std::filesystem::path p(file);
  return p.is_absolute() ? p : ctx.base_dir / p;
}

/// `header`, `query`, `cookie` (each a name or a list of names): where a credential is read.
inline std::vector<Credential> credentials(Fields& f, bool strip_default) {
  using namespace std::string_view_literals;
  std::vector<Credential> out;
  // Reading a header the proxy owns (Host, say) is harmless; removing it is not.
  const json* strip_value = f.get("strip");
  const bool strip =
      strip_value && strip_value->is_boolean() ? strip_value->get<bool>() : strip_default;
  for (auto [key, in] :
       {std::pair{"header"sv, Credential::In::header}, std::pair{"query"sv, Credential::In::query},
        std::pair{"cookie"sv, Credential::In::cookie}}) {
    auto names = f.strings(key);
    if (!names) continue;
    for (auto& n : *names) {
      if (in == Credential::In::header && !text::is_token(n)) {
        f.error(key, "header name " + text::quote(n) + " is not a valid field name");
        continue;
      }
      if (in == Credential::In::header && strip && managed_by_proxy(n)) {
        f.error(
            key,
            "header " + text::quote(n) +
                " is managed by the proxy and cannot be stripped; set strip = false to read it");
        continue;
      }
      if (n.empty()) {
        f.error(key, std::string(key) + " names must not be empty");
        continue;
      }
      out.push_back(Credential{in, in == Credential::In::header ? text::lower(n) : n});
    }
  }
  return out;
}

/// A header the gateway sets (the consumer header): a field name the proxy does not own.
inline std::string header_option(Fields& f, std::string_view key, std::string fallback) {
  auto v = f.str(key);
  if (!v) return fallback;
  if (!v->empty() && !text::is_token(*v))
    f.error(key, text::quote(*v) + " is not a header name");
  else if (managed_by_proxy(*v))
    f.error(key, text::quote(*v) + " is managed by the proxy and cannot be set here");
  return text::lower(*v);
}

/// A kind's reader: reads `f`'s settings into T, reporting through `f`; with `canonical`, also
/// rewrites the JSON to store (files read and embedded).
template <class T>
using Reader = T (*)(Fields& f, json* canonical);

/// Runs `read` over one policy's settings, then reports the keys it did not ask for.
template <class T>
std::optional<T> run_reader(std::string_view kind, Reader<T> read, const json& j, Fields& f,
                            json* canonical) {
  f.kind_ = std::string(kind);
  if (!j.is_object()) {
    f.error("", "settings must be a table");
    return std::nullopt;
  }
  T s = read(f, canonical);
  f.finish();
  if (!f.ok()) return std::nullopt;
  return s;
}

/// A row's `compile`: the canonical JSON to store, or nullopt after reporting every problem.
template <class T>
std::optional<json> compile_with(std::string_view kind, Reader<T> read, const json& settings,
                                 const Context& ctx, Diagnostics& diags) {
  Fields f(settings, ctx, &diags);
  json canonical = settings;
  if (!run_reader(kind, read, settings, f, &canonical)) return std::nullopt;
  return canonical;
}

/// Typed settings from canonical JSON (a table's): what a factory builds its filter from.
template <class T>
Result<T> parse_with(std::string_view kind, Reader<T> read, std::string_view canonical,
                     std::string_view policy) {
  const json j = json::parse(canonical, nullptr, false);
  Context ctx;
  ctx.policy = policy;
  Fields f(j, ctx, nullptr);
  auto s = run_reader(kind, read, j, f, nullptr);
  if (!s)
    return fail(errc::invalid_argument,
                f.first_error().empty() ? "bad policy settings" : f.first_error());
  return std::move(*s);
}

/// A row's `build` for a kind whose filter is made from its typed settings alone.
template <class T, class F>
Result<std::shared_ptr<const Filter>> build_from(const BuildContext& ctx) {
  auto s = parse<T>(ctx.settings, ctx.policy);
  if (!s) return std::unexpected(s.error());
  return std::make_shared<const F>(std::move(*s));
}

} // namespace
} // namespace gw::policy
