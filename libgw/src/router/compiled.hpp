// Private: the compiled form of a RouteTable, shared by match() and explain().
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

struct PatternEdge {
  model::TemplateSegment segment;
  std::uint32_t child = 0;
  std::uint8_t captures = 0;
};

/// A trie node: one path segment deeper than its parent.
struct Node {
  StringMap<std::uint32_t> literal;          // child by literal segment
  std::vector<PatternEdge> patterns;         // child by segment pattern ("{id}", "{name}.{ext}")
  std::vector<std::uint32_t> templates;      // templates that end here (route ids, by rank)
  std::vector<std::uint32_t> rest;           // templates with {rest...} after this node
  std::vector<std::uint32_t> prefixes;       // prefixes ending here ("/api": "/api" or "/api/...")
  std::vector<std::uint32_t> slash_prefixes; // prefixes ending here with "/" ("/api/...")
};

/// The routes of one host key ("api.example.com", "*.example.com" or any host).
struct Group {
  std::string label;
  StringMap<std::vector<std::uint32_t>> exact; // canonical path -> route ids by rank
  std::vector<Node> nodes{1};                  // nodes[0] is the root
  std::vector<std::uint32_t> regex;            // route ids by rank
};

/// Route ids are indices into Impl::routes.
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
  /// Header and query conditions of route `id` against `req`.
  bool conditions_hold(const detail::CompiledRoute& r, const Request& req) const;
};

/// Evaluates one matcher (shared by match, explain and tests).
bool matcher_holds(const detail::CompiledMatcher& m, bool found, std::string_view value);

} // namespace gw::router
