#include "gw/router/route_table.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "compiled.hpp"
#include "gw/model/precedence.hpp"
#include "gw/router/errc.hpp"
#include "gw/uri/normalize.hpp"

namespace gw::router {

using detail::CompiledRoute;
using detail::Group;
using detail::Node;
using detail::RouteRef;

namespace detail {

std::uint64_t segment_hash(std::string_view seg) noexcept {
  // FNV-1a; segments are short and this runs once per segment per lookup.
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : seg) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::uint64_t edge_key(std::uint32_t parent, std::uint64_t seg_hash) noexcept {
  std::uint64_t k = seg_hash ^ (static_cast<std::uint64_t>(parent) * 0x9E3779B97F4A7C15ULL);
  k ^= k >> 29;
  k *= 0xBF58476D1CE4E5B9ULL;
  k ^= k >> 32;
  return k | 1; // never 0: 0 marks an empty slot
}

const Edge* Group::child(std::uint32_t parent, std::string_view seg,
                         std::uint64_t seg_hash) const noexcept {
  if (edges.empty()) return nullptr;
  const std::uint64_t key = edge_key(parent, seg_hash);
  for (std::uint64_t i = key & edge_mask;; i = (i + 1) & edge_mask) {
    const Edge& e = edges[i];
    if (e.hash == 0) return nullptr;
    if (e.hash != key || e.parent != parent || e.len != seg.size()) continue;
    const char* text = e.len <= Edge::kInline ? e.text : arena.data() + e.off;
    if (std::memcmp(text, seg.data(), seg.size()) == 0) return &e;
  }
}

} // namespace detail

namespace {

class RouterCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "router"; }
  std::string message(int ev) const override {
    return ev == static_cast<int>(errc::bad_route) ? "bad_route" : "ok";
  }
};

std::unique_ptr<RE2> compile_regex(const std::string& pattern) {
  RE2::Options opt;
  opt.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, opt);
  if (!re->ok()) return nullptr;
  return re;
}

bool same_shape(const model::TemplateSegment& a, const model::TemplateSegment& b) {
  if (a.parts.size() != b.parts.size()) return false;
  for (std::size_t i = 0; i < a.parts.size(); ++i) {
    if (a.parts[i].param != b.parts[i].param) return false;
    if (!a.parts[i].param && a.parts[i].text != b.parts[i].text) return false;
  }
  return true;
}

/// The trie while it is being built: convenient maps, flattened into a Group afterwards.
struct BuildNode {
  std::unordered_map<std::string, std::uint32_t> literal;
  std::vector<std::pair<model::TemplateSegment, std::uint32_t>> patterns;
  std::vector<std::uint32_t> terminal, rest, prefix, slash;
};

struct BuildGroup {
  std::string label;
  std::vector<BuildNode> nodes{1};
  std::vector<std::uint32_t> regex;

  std::uint32_t literal_child(std::uint32_t node, const std::string& seg) {
    if (auto it = nodes[node].literal.find(seg); it != nodes[node].literal.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(nodes.size());
    nodes[node].literal.emplace(seg, id); // before emplace_back: it may move the nodes
    nodes.emplace_back();
    return id;
  }
  std::uint32_t pattern_child(std::uint32_t node, const model::TemplateSegment& seg) {
    for (const auto& [p, child] : nodes[node].patterns)
      if (same_shape(p, seg)) return child;
    const auto id = static_cast<std::uint32_t>(nodes.size());
    nodes[node].patterns.emplace_back(seg, id);
    nodes.emplace_back();
    return id;
  }
};

Group flatten(BuildGroup&& b, const std::vector<CompiledRoute>& routes) {
  Group g;
  g.label = std::move(b.label);
  g.nodes.resize(b.nodes.size());
  auto refs = [&](std::vector<std::uint32_t>& ids, std::vector<RouteRef>& out) {
    std::sort(ids.begin(), ids.end(),
              [&](auto x, auto y) { return routes[x].rank < routes[y].rank; });
    detail::Range r{static_cast<std::uint32_t>(out.size()), 0};
    for (auto id : ids) {
      const auto& cr = routes[id];
      out.push_back(RouteRef{id, cr.rank, cr.methods.bits(),
                             static_cast<std::uint8_t>(!cr.headers.empty() || !cr.query.empty()),
                             0});
    }
    r.end = static_cast<std::uint32_t>(out.size());
    return r;
  };
  std::size_t edge_count = 0;
  for (std::uint32_t i = 0; i < b.nodes.size(); ++i) {
    BuildNode& bn = b.nodes[i];
    Node& n = g.nodes[i];
    n.terminal = refs(bn.terminal, g.refs);
    n.rest = refs(bn.rest, g.refs);
    n.prefix = refs(bn.prefix, g.refs);
    n.slash = refs(bn.slash, g.refs);
    n.literals = static_cast<std::uint32_t>(bn.literal.size());
    n.patterns.begin = static_cast<std::uint32_t>(g.patterns.size());
    for (auto& [seg, child] : bn.patterns) {
      if (seg.single_param()) {
        n.param = child; // at most one: equal shapes share a child
        continue;
      }
      g.patterns.push_back(
          detail::PatternEdge{seg, child, static_cast<std::uint8_t>(seg.param_count()), false});
    }
    n.patterns.end = static_cast<std::uint32_t>(g.patterns.size());
    edge_count += bn.literal.size();
  }
  std::vector<RouteRef> regex;
  refs(b.regex, regex);
  g.regex = std::move(regex);

  // Open addressing at a load factor of at most 1/2.
  std::size_t cap = 8;
  while (cap < edge_count * 2)
    cap <<= 1;
  g.edges.assign(edge_count ? cap : 0, detail::Edge{});
  g.edge_mask = cap - 1;
  for (std::uint32_t i = 0; i < b.nodes.size(); ++i) {
    for (const auto& [text, child] : b.nodes[i].literal) {
      detail::Edge e;
      e.hash = detail::edge_key(i, detail::segment_hash(text));
      e.parent = i;
      e.child = child;
      e.len = static_cast<std::uint32_t>(text.size());
      if (e.len <= detail::Edge::kInline) {
        std::memcpy(e.text, text.data(), text.size());
      } else {
        e.off = static_cast<std::uint32_t>(g.arena.size());
        g.arena += text;
      }
      std::uint64_t slot = e.hash & g.edge_mask;
      while (g.edges[slot].hash != 0)
        slot = (slot + 1) & g.edge_mask;
      g.edges[slot] = e;
    }
  }
  return g;
}

struct Span {
  const char* data;
  std::size_t size;
};

/// Depth-first search of one group for the best-ranked route matching the request.
class Search {
public:
  Search(const RouteTable::Impl& impl, const Request& req, std::string_view path)
      : impl_(impl), req_(req), path_(path),
        method_bit_(static_cast<std::uint16_t>(1u << static_cast<unsigned>(req.method))) {}

  void run(const Group& g) {
    g_ = &g;
    walk(0, g.nodes[0], 0, 0);
    // Regex routes rank below everything else; they run only if nothing else matched.
    if (best_ == kNone && !g.regex.empty()) consider_regex();
  }

  bool found() const noexcept { return best_ != kNone; }

  void fill(Match& m) const noexcept {
    const CompiledRoute& r = impl_.routes[best_];
    m.status = MatchStatus::matched;
    m.route = r.index;
    m.param_count = static_cast<std::uint8_t>(best_caps_n_);
    m.param_names = r.param_names.data();
    for (std::size_t i = 0; i < best_caps_n_; ++i)
      m.values[i] =
          Match::Value{best_caps_[i].data, static_cast<std::uint32_t>(best_caps_[i].size)};
  }

  model::MethodSet allow() const noexcept { return model::MethodSet::from_bits(allow_); }

private:
  static constexpr std::uint32_t kNone = 0xffffffffu;

  /// Routes in `range` (sorted by rank) whose path matched with `ncaps` captures on the stack.
  void consider(detail::Range range, std::size_t ncaps) {
    for (std::uint32_t i = range.begin; i < range.end; ++i) {
      const RouteRef& ref = g_->refs[i];
      if (consider_one(ref, ncaps)) return;
    }
  }

  /// True when nothing later in a rank-sorted list can do better.
  bool consider_one(const RouteRef& ref, std::size_t ncaps) {
    if (ref.rank >= best_rank_) return true;
    if (!(ref.methods & method_bit_)) {
      if (!ref.conditions || impl_.conditions_hold(impl_.routes[ref.id], req_))
        allow_ |= ref.methods;
      return false;
    }
    if (ref.conditions && !impl_.conditions_hold(impl_.routes[ref.id], req_)) return false;
    best_rank_ = ref.rank;
    best_ = ref.id;
    best_caps_n_ = ncaps;
    std::copy_n(caps_, ncaps, best_caps_);
    return true;
  }

  /// `pos` indexes path_ at a "/" (or its end); `ncaps` captures are on the stack.
  void walk(std::uint32_t node_id, const Node& node, std::size_t pos, std::size_t ncaps) {
    if (pos == path_.size()) {
      consider(node.terminal, ncaps);
      consider(node.prefix, ncaps);
      return;
    }
    // path_[pos] == '/': a prefix ending here matches, and so may a {rest...}.
    consider(node.prefix, ncaps);
    consider(node.slash, ncaps);
    if (!node.rest.empty() && pos + 1 < path_.size() && ncaps < model::kMaxTemplateParams) {
      caps_[ncaps] = Span{path_.data() + pos + 1, path_.size() - pos - 1};
      consider(node.rest, ncaps + 1);
    }
    const std::size_t start = pos + 1;
    std::size_t end = path_.find('/', start);
    if (end == std::string_view::npos) end = path_.size();
    const std::string_view seg = path_.substr(start, end - start);
    if (node.literals != 0)
      if (const detail::Edge* e = g_->child(node_id, seg, detail::segment_hash(seg)))
        walk(e->child, g_->nodes[e->child], end, ncaps);
    if (seg.empty()) return; // parameters never match an empty segment
    if (node.param != Node::kNone && ncaps < model::kMaxTemplateParams) {
      caps_[ncaps] = Span{seg.data(), seg.size()};
      walk(node.param, g_->nodes[node.param], end, ncaps + 1);
    }
    for (std::uint32_t i = node.patterns.begin; i < node.patterns.end; ++i) {
      const detail::PatternEdge& e = g_->patterns[i];
      if (ncaps + e.captures > model::kMaxTemplateParams) continue;
      if (e.single) {
        caps_[ncaps] = Span{seg.data(), seg.size()};
      } else {
        std::array<std::string_view, model::kMaxTemplateParams> tmp;
        if (!e.segment.match(seg, tmp.data())) continue;
        for (std::size_t k = 0; k < e.captures; ++k)
          caps_[ncaps + k] = Span{tmp[k].data(), tmp[k].size()};
      }
      walk(e.child, g_->nodes[e.child], end, ncaps + e.captures);
    }
  }

  void consider_regex() {
    for (const RouteRef& ref : g_->regex) {
      if (ref.rank >= best_rank_) return;
      if (!RE2::FullMatch(path_, *impl_.routes[ref.id].regex)) continue;
      if (consider_one(ref, 0) && best_ == ref.id) return;
    }
  }

  const RouteTable::Impl& impl_;
  const Request& req_;
  std::string_view path_;
  const Group* g_ = nullptr;
  std::uint16_t method_bit_;
  std::uint16_t allow_ = 0;
  std::uint32_t best_ = kNone;
  std::uint32_t best_rank_ = kNone;
  std::size_t best_caps_n_ = 0;
  Span caps_[model::kMaxTemplateParams]; // uninitialised: only the used prefix is read
  Span best_caps_[model::kMaxTemplateParams];
};

} // namespace

const std::error_category& router_category() noexcept {
  static const RouterCategory cat;
  return cat;
}

bool matcher_holds(const detail::CompiledMatcher& cm, bool found, std::string_view v) {
  const model::Matcher& m = *cm.m;
  bool r = false;
  if (found) {
    switch (m.op) {
    case model::MatchOp::present:
      r = true;
      break;
    case model::MatchOp::exact:
      r = v == m.value;
      break;
    case model::MatchOp::prefix:
      r = v.starts_with(m.value);
      break;
    case model::MatchOp::suffix:
      r = v.ends_with(m.value);
      break;
    case model::MatchOp::contains:
      r = v.find(m.value) != std::string_view::npos;
      break;
    case model::MatchOp::regex:
      r = cm.re && RE2::FullMatch(v, *cm.re);
      break;
    }
  }
  return m.invert ? !r : r;
}

bool RouteTable::Impl::conditions_hold(const CompiledRoute& r, const Request& req) const {
  for (const auto& h : r.headers) {
    std::string_view v;
    const bool found = req.headers && req.headers->find(h.m->name, v);
    if (!matcher_holds(h, found, v)) return false;
  }
  for (const auto& q : r.query) {
    bool found = false;
    std::string value;
    uri::for_each_query_param(req.query, [&](std::string_view k, std::string_view v) {
      if (k != q.m->name) return true;
      found = true;
      value = v;
      return false;
    });
    if (!matcher_holds(q, found, value)) return false;
  }
  return true;
}

std::size_t RouteTable::Impl::groups_for(std::string_view host,
                                         std::array<std::uint32_t, 64>& out) const noexcept {
  std::size_t n = 0;
  if (!host.empty()) {
    if (auto it = exact_hosts.find(host); it != exact_hosts.end()) out[n++] = it->second;
    if (!wildcard_hosts.empty()) {
      // Longest suffix first: ".b.example.com" before ".example.com".
      for (std::size_t dot = host.find('.'); dot != std::string_view::npos && n < out.size() - 1;
           dot = host.find('.', dot + 1)) {
        const std::string_view suffix = host.substr(dot);
        if (suffix.size() > max_wildcard_len) continue;
        if (auto it = wildcard_hosts.find(suffix); it != wildcard_hosts.end())
          out[n++] = it->second;
      }
    }
  }
  if (any_group != detail::kNoGroup) out[n++] = any_group;
  return n;
}

std::string_view normalize_host(std::string_view host, std::span<char> buf) noexcept {
  std::string_view h = host;
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    if (close != std::string_view::npos) h = h.substr(0, close + 1);
  } else if (const auto colon = h.rfind(':'); colon != std::string_view::npos) {
    h = h.substr(0, colon);
  }
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  if (h.size() > buf.size()) return {};
  for (std::size_t i = 0; i < h.size(); ++i) {
    const char c = h[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return {buf.data(), h.size()};
}

Result<RouteTable> RouteTable::build(std::shared_ptr<const model::Config> config) {
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  const model::Config& cfg = *impl->config;
  const std::size_t n = cfg.routes.size();
  impl->routes.resize(n);

  std::vector<std::optional<model::PathTemplate>> templates(n);
  std::vector<std::pair<model::PrecedenceKey, std::uint32_t>> keys;
  keys.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const model::Route& route = cfg.routes[i];
    CompiledRoute& cr = impl->routes[i];
    cr.route = &route;
    cr.index = i;
    cr.methods = route.methods;
    auto compile_matchers = [&](const std::vector<model::Matcher>& in,
                                std::vector<detail::CompiledMatcher>& out) -> bool {
      for (const auto& m : in) {
        detail::CompiledMatcher cm{&m, nullptr};
        if (m.op == model::MatchOp::regex && !(cm.re = compile_regex(m.value))) return false;
        out.push_back(std::move(cm));
      }
      return true;
    };
    if (!compile_matchers(route.headers, cr.headers) || !compile_matchers(route.query, cr.query))
      return fail(errc::bad_route,
                  "route \"" + route.name + "\": a matcher regex does not compile");
    switch (route.kind) {
    case model::MatchKind::regex:
      cr.regex = compile_regex(route.pattern);
      if (!cr.regex)
        return fail(errc::bad_route, "route \"" + route.name + "\": regex does not compile");
      break;
    case model::MatchKind::template_: {
      auto t = model::PathTemplate::parse(route.pattern);
      if (!t) return fail(errc::bad_route, "route \"" + route.name + "\": " + t.error().message);
      if (t->param_names().size() > model::kMaxTemplateParams)
        return fail(errc::bad_route, "route \"" + route.name + "\": too many parameters");
      cr.param_names = t->param_names();
      templates[i] = std::move(*t);
      break;
    }
    case model::MatchKind::exact:
    case model::MatchKind::prefix:
      if (route.pattern.empty() || route.pattern[0] != '/')
        return fail(errc::bad_route, "route \"" + route.name + "\": path must start with \"/\"");
      break;
    }
    keys.emplace_back(model::precedence_key(route, templates[i] ? &*templates[i] : nullptr), i);
  }
  // Ranks: precedence without host tiers, which the group order already expresses.
  std::sort(keys.begin(), keys.end());
  for (std::uint32_t r = 0; r < n; ++r)
    impl->routes[keys[r].second].rank = r;

  std::vector<BuildGroup> groups;
  auto group_for = [&](detail::StringMap<std::uint32_t>* map, const std::string& key,
                       const std::string& label) -> BuildGroup& {
    std::uint32_t* slot;
    if (!map) {
      slot = &impl->any_group;
    } else {
      auto [it, _] = map->try_emplace(key, detail::kNoGroup);
      slot = &it->second;
    }
    if (*slot == detail::kNoGroup) {
      *slot = static_cast<std::uint32_t>(groups.size());
      groups.emplace_back();
      groups.back().label = label;
    }
    return groups[*slot];
  };

  for (std::uint32_t i = 0; i < n; ++i) {
    const model::Route& route = cfg.routes[i];
    auto insert = [&](BuildGroup& g) {
      switch (route.kind) {
      case model::MatchKind::regex:
        g.regex.push_back(i);
        break;
      case model::MatchKind::exact:
      case model::MatchKind::prefix: {
        std::string_view p = route.pattern;
        const bool slash = route.kind == model::MatchKind::prefix && p.back() == '/';
        if (slash) p.remove_suffix(1);
        std::uint32_t node = 0;
        std::size_t pos = 0;
        while (pos < p.size()) { // p[pos] == '/'; "/" alone is one empty segment
          std::size_t end = p.find('/', pos + 1);
          if (end == std::string_view::npos) end = p.size();
          node = g.literal_child(node, std::string(p.substr(pos + 1, end - pos - 1)));
          pos = end;
        }
        if (route.kind == model::MatchKind::exact)
          g.nodes[node].terminal.push_back(i);
        else
          (slash ? g.nodes[node].slash : g.nodes[node].prefix).push_back(i);
        break;
      }
      case model::MatchKind::template_: {
        std::uint32_t node = 0;
        for (const auto& seg : templates[i]->segments())
          node =
              seg.literal() ? g.literal_child(node, seg.parts[0].text) : g.pattern_child(node, seg);
        (templates[i]->has_rest() ? g.nodes[node].rest : g.nodes[node].terminal).push_back(i);
        break;
      }
      }
    };
    if (route.hosts.empty()) {
      insert(group_for(nullptr, "", "*"));
    } else {
      for (const auto& h : route.hosts) {
        if (h.starts_with("*.")) {
          const std::string suffix = h.substr(1);
          impl->max_wildcard_len = std::max(impl->max_wildcard_len, suffix.size());
          insert(group_for(&impl->wildcard_hosts, suffix, h));
        } else {
          insert(group_for(&impl->exact_hosts, h, h));
        }
      }
    }
  }
  impl->groups.reserve(groups.size());
  for (auto& g : groups)
    impl->groups.push_back(flatten(std::move(g), impl->routes));
  return RouteTable(std::move(impl));
}

RouteTable::RouteTable(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;
RouteTable::~RouteTable() = default;

const model::Config& RouteTable::config() const noexcept {
  return *impl_->config;
}
const std::shared_ptr<const model::Config>& RouteTable::config_ptr() const noexcept {
  return impl_->config;
}

Match RouteTable::match(const Request& req) const noexcept {
  Match m;
  std::array<std::uint32_t, 64> gids;
  std::size_t ng;
  if (impl_->host_specific()) {
    std::array<char, 256> hbuf;
    ng = impl_->groups_for(normalize_host(req.host, hbuf), gids);
  } else {
    ng = impl_->groups_for({}, gids); // only the any-host group: skip host work
  }
  std::uint16_t allow = 0;
  for (std::size_t i = 0; i < ng; ++i) {
    Search s(*impl_, req, req.path);
    s.run(impl_->groups[gids[i]]);
    if (s.found()) {
      s.fill(m);
      return m;
    }
    allow |= s.allow().bits();
  }
  m.allow = model::MethodSet::from_bits(allow);
  m.status = allow == 0 ? MatchStatus::not_found : MatchStatus::method_not_allowed;
  return m;
}

} // namespace gw::router

namespace gw::router {

void append_rewritten_path(std::string& out, const model::Route& route, const ParamList& params,
                           std::string_view path) {
  if (route.rewrite.path) {
    // The template was validated: every {name} is a captured parameter.
    const std::string& t = *route.rewrite.path;
    for (std::size_t i = 0; i < t.size();) {
      if (t[i] != '{') {
        out += t[i++];
        continue;
      }
      const std::size_t close = t.find('}', i);
      std::string_view name = std::string_view(t).substr(i + 1, close - i - 1);
      if (name.ends_with("...")) name.remove_suffix(3);
      if (auto v = params.find(name)) out += *v;
      i = close + 1;
    }
    return;
  }
  if (route.rewrite.prefix && route.kind == model::MatchKind::prefix) {
    std::string_view matched = route.pattern;
    if (matched.size() > 1 && matched.back() == '/') matched.remove_suffix(1);
    std::string_view rest = path.substr(std::min(matched.size(), path.size()));
    const std::string& prefix = *route.rewrite.prefix;
    const std::size_t start = out.size();
    out += prefix;
    // Join without doubling or losing the "/" between the new prefix and the rest.
    if (!prefix.empty() && prefix.back() == '/' && rest.starts_with('/'))
      rest.remove_prefix(1);
    else if ((prefix.empty() || prefix.back() != '/') && !rest.empty() && !rest.starts_with('/'))
      out += '/';
    out += rest;
    if (out.size() == start) out += '/';
    return;
  }
  out += path;
}

std::string rewritten_path(const model::Route& route, const ParamList& params,
                           std::string_view path) {
  std::string out;
  append_rewritten_path(out, route, params, path);
  return out;
}

} // namespace gw::router
