// Private: the compiled form of a RouteTable, shared by match(), explain() and analyze().
//
// Lookups are memory-bound on big tables, so the trie is flat: per host group, one array of
// 40-byte nodes, one open-addressing table of literal edges keyed by (parent, segment) with
// short segments stored inline, and candidate lists of 12-byte route references that carry the
// rank and methods, so only the winning route's full record is ever touched.
#pragma once

#include <memory>
#include <re2/re2.h>
#include <string>
#include <unordered_map>
#include <vector>

#include "gw/model/path_template.hpp"
#include "gw/router/route_table.hpp"

namespace gw::router::detail {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct CompiledMatcher {
  const model::Matcher* m = nullptr;
  std::unique_ptr<RE2> re;
};

struct CompiledRoute {
  const model::Route* route = nullptr;
  std::uint32_t index = 0; // in Config::routes
  std::uint32_t rank = 0;  // precedence within any host group; smaller wins
  model::MethodSet methods;
  std::vector<CompiledMatcher> headers, query;
  std::unique_ptr<RE2> regex;           // regex routes
  std::vector<std::string> param_names; // template routes, in capture order
};

/// A candidate in a node's list: enough to decide without loading the CompiledRoute.
struct RouteRef {
  std::uint32_t id = 0; // index into Impl::routes
  std::uint32_t rank = 0;
  std::uint16_t methods = 0;
  std::uint8_t conditions = 0; // has header or query conditions
  std::uint8_t unused = 0;
};

struct Range {
  std::uint32_t begin = 0, end = 0;
  bool empty() const noexcept { return begin == end; }
};

struct Node {
  static constexpr std::uint32_t kNone = 0xffffffffu;
  std::uint32_t literals = 0;  // number of literal children (0: skip the edge probe)
  std::uint32_t param = kNone; // child reached by a whole-segment "{name}", the common case
  Range patterns;              // other segment patterns, into Group::patterns
  Range terminal;              // exact paths and templates that end here
  Range rest;                  // templates with {rest...} after this node
  Range prefix;                // prefixes ending here ("/api": "/api" or "/api/...")
  Range slash;                 // prefixes ending here with "/" ("/api/": "/api/...")
};

/// A literal edge in the open-addressing table (40 bytes). hash == 0 marks an empty slot.
/// (Copying the child's node record into the edge was measured: twice the table size cost more
/// misses than the saved indirection.)
struct Edge {
  static constexpr std::uint32_t kInline = 16;
  std::uint64_t hash = 0;
  std::uint32_t parent = 0;
  std::uint32_t child = 0;
  std::uint32_t len = 0;
  std::uint32_t off = 0; // into Group::arena when len > kInline
  char text[kInline] = {};
};

struct PatternEdge {
  model::TemplateSegment segment;
  std::uint32_t child = 0;
  std::uint8_t captures = 0;
  bool single = false; // the whole segment is one parameter: any non-empty segment matches
};

/// The routes of one host key ("api.example.com", "*.example.com" or any host).
struct Group {
  std::string label;
  std::vector<Node> nodes; // nodes[0] is the root
  std::vector<Edge> edges; // power-of-two size
  std::uint64_t edge_mask = 0;
  std::string arena; // long segment texts
  std::vector<PatternEdge> patterns;
  std::vector<RouteRef> refs; // candidate lists, by rank within each range
  std::vector<RouteRef> regex;

  /// The edge from `parent` for literal segment `seg`, or null.
  const Edge* child(std::uint32_t parent, std::string_view seg,
                    std::uint64_t seg_hash) const noexcept;
};

std::uint64_t segment_hash(std::string_view seg) noexcept;
std::uint64_t edge_key(std::uint32_t parent, std::uint64_t seg_hash) noexcept;

constexpr std::uint32_t kNoGroup = 0xffffffffu;

} // namespace gw::router::detail

namespace gw::router {

struct RouteTable::Impl {
  std::shared_ptr<const model::Config> config;
  std::vector<detail::CompiledRoute> routes;
  std::vector<detail::Group> groups;
  detail::StringMap<std::uint32_t> exact_hosts;    // host -> group
  detail::StringMap<std::uint32_t> wildcard_hosts; // ".example.com" -> group
  std::uint32_t any_group = detail::kNoGroup;
  std::size_t max_wildcard_len = 0;

  /// Groups to try for `host` (normalised), most specific first. Returns the count.
  std::size_t groups_for(std::string_view host, std::array<std::uint32_t, 64>& out) const noexcept;
  /// Header and query conditions of a route against `req`.
  bool conditions_hold(const detail::CompiledRoute& r, const Request& req) const;
  bool host_specific() const noexcept { return !exact_hosts.empty() || !wildcard_hosts.empty(); }
};

/// Evaluates one matcher (shared by match, explain and tests).
bool matcher_holds(const detail::CompiledMatcher& m, bool found, std::string_view value);

} // namespace gw::router
