// model::Config: the validated configuration. Value types only; every reference is an index that
// validate() (or table::decode()) has checked. Routes are kept in precedence order.
// Read next: validate.hpp (how a spec::Document becomes a Config), precedence.hpp (the order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gw/core/sha256.hpp"
#include "gw/model/method.hpp"

namespace gw::model {

inline constexpr std::uint32_t kNoFile = 0xffffffffu;

/// Where a definition came from: index into Config::sources, line and column.
struct SourceRef {
  std::uint32_t file = kNoFile;
  std::uint32_t line = 0;
  std::uint32_t col = 0;
  bool operator==(const SourceRef&) const = default;
};

/// A source file of the configuration. A table records `name` and `digest` only, so that it
/// depends on what its sources say, not on where they were compiled from (portable_source_names).
struct Source {
  std::string name;
  Sha256 digest{};
  std::string path; // as given to the load that read it, for messages; empty in a decoded table
  bool operator==(const Source& o) const { return name == o.name && digest == o.digest; }
};

enum class Balance : std::uint8_t { round_robin, least_request, hash, random };
enum class HashOn : std::uint8_t { none, header, cookie, client_ip };

struct Endpoint {
  std::string host; // IP literal or DNS name (IPv6 without brackets)
  std::uint16_t port = 0;
  std::uint32_t weight = 1;
  /// "host:port", IPv6 as "[::1]:80".
  std::string address() const;
  bool operator==(const Endpoint&) const = default;
};

struct Upstream {
  std::string name;
  std::vector<Endpoint> endpoints;
  Balance balance = Balance::round_robin;
  HashOn hash_on = HashOn::none;
  std::string hash_key; // header or cookie name (lowercase header name)
  std::uint32_t connect_timeout_ms = 0;
  SourceRef src;
  bool operator==(const Upstream&) const = default;
};

enum class MatchKind : std::uint8_t { exact, template_, prefix, regex };
enum class MatchOp : std::uint8_t { exact, prefix, suffix, contains, regex, present };

/// A header or query parameter condition. Header names are lowercase.
struct Matcher {
  std::string name;
  MatchOp op = MatchOp::present;
  std::string value;
  bool invert = false;
  bool operator==(const Matcher&) const = default;
  auto operator<=>(const Matcher&) const = default;
};

struct Rewrite {
  std::optional<std::string> path;   // template over captured params
  std::optional<std::string> prefix; // replaces the matched prefix
  std::optional<std::string> host;
  bool empty() const noexcept { return !path && !prefix && !host; }
  bool operator==(const Rewrite&) const = default;
};

struct Route {
  std::string name;
  std::vector<std::string> hosts; // lowercase, sorted; "*.example.com" wildcards; empty = any
  MethodSet methods = MethodSet::all();
  MatchKind kind = MatchKind::prefix;
  std::string pattern; // canonical path, prefix, template text or regex
  std::int32_t priority = 0;
  std::uint32_t upstream = 0; // index into Config::upstreams
  std::uint32_t timeout_ms = 0;
  std::uint32_t per_try_timeout_ms = 0; // 0 = the route timeout
  std::uint32_t retries = 0;
  std::uint64_t max_body = 0;          // 0 = unlimited
  std::vector<std::uint32_t> policies; // indices into Config::policies, in order
  std::vector<Matcher> headers;        // sorted
  std::vector<Matcher> query;          // sorted
  Rewrite rewrite;
  std::uint32_t decl = 0; // declaration order across all sources
  SourceRef src;
  bool operator==(const Route&) const = default;
};

/// A named policy instance; `config` is canonical JSON (sorted keys) for its kind's factory.
struct Policy {
  std::string name;
  std::string kind;
  std::string config;
  SourceRef src;
  bool operator==(const Policy&) const = default;
};

struct Config {
  std::vector<Source> sources;
  std::vector<Upstream> upstreams; // sorted by name
  std::vector<Policy> policies;    // sorted by name
  std::vector<Route> routes;       // precedence order
  bool operator==(const Config&) const = default;

  const Upstream* find_upstream(std::string_view name) const;
  const Route* find_route(std::string_view name) const;
  /// "file:line" of a definition, or "" when unknown. The file is source_file(src.file).
  std::string where(const SourceRef& src) const;
  /// How messages name source `file` (< sources.size()): its path as given when read from
  /// specs, else the name its table recorded.
  const std::string& source_file(std::uint32_t file) const;
};

/// The names a table records for sources at these absolute, lexically normal paths: for each,
/// the shortest run of trailing path components no other (different) path ends with —
/// "demo.toml", or "a/routes.toml" and "b/routes.toml" — and the whole path if there is none.
std::vector<std::string> portable_source_names(const std::vector<std::string>& absolute_paths);

std::string_view to_string(Balance b) noexcept;
std::string_view to_string(HashOn h) noexcept;
std::string_view to_string(MatchKind k) noexcept; // "path" | "template" | "prefix" | "regex"
std::string_view to_string(MatchOp op) noexcept;

/// Route defaults used when neither the route nor [defaults] sets a value.
inline constexpr std::uint32_t kDefaultTimeoutMs = 30'000;
inline constexpr std::uint32_t kDefaultConnectTimeoutMs = 5'000;
inline constexpr std::uint32_t kDefaultRetries = 1;
inline constexpr std::uint32_t kMaxRetries = 5;

} // namespace gw::model
