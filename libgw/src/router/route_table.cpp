#include "gw/router/route_table.hpp"

#include <algorithm>
#include <numeric>

#include "compiled.hpp"
#include "gw/model/precedence.hpp"
#include "gw/router/errc.hpp"
#include "gw/uri/normalize.hpp"

namespace gw::router {

using detail::CompiledRoute;
using detail::Group;
using detail::Node;

namespace {

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

std::uint32_t child_literal(Group& g, std::uint32_t node, const std::string& seg) {
  auto it = g.nodes[node].literal.find(seg);
  if (it != g.nodes[node].literal.end()) return it->second;
  const auto id = static_cast<std::uint32_t>(g.nodes.size());
  g.nodes.emplace_back();
  g.nodes[node].literal.emplace(seg, id);
  return id;
}

std::uint32_t child_pattern(Group& g, std::uint32_t node, const model::TemplateSegment& seg) {
  for (const auto& e : g.nodes[node].patterns)
    if (same_shape(e.segment, seg)) return e.child;
  const auto id = static_cast<std::uint32_t>(g.nodes.size());
  g.nodes.emplace_back();
  g.nodes[node].patterns.push_back(
      detail::PatternEdge{seg, id, static_cast<std::uint8_t>(seg.param_count())});
  return id;
}

/// Depth-first search of one group for the best-ranked route matching the request.
class Search {
public:
  Search(const RouteTable::Impl& impl, const Request& req, std::string_view path)
      : impl_(impl), req_(req), path_(path) {}

  void run(const Group& g) {
    if (auto it = g.exact.find(path_); it != g.exact.end()) consider(it->second, 0);
    walk(g, 0, 0, 0);
    // Regex routes rank below everything else; they run only if nothing else matched.
    if (best_ == kNone) consider_regex(g);
  }

  bool found() const noexcept { return best_ != kNone; }

  void fill(Match& m) const noexcept {
    const CompiledRoute& r = impl_.routes[best_];
    m.status = MatchStatus::matched;
    m.route = r.index;
    m.param_count = static_cast<std::uint8_t>(best_caps_n_);
    for (std::size_t i = 0; i < best_caps_n_; ++i)
      m.param_storage[i] = Param{r.param_names[i], best_caps_[i]};
  }

  model::MethodSet allow() const noexcept { return allow_; }

private:
  static constexpr std::uint32_t kNone = 0xffffffffu;

  /// Routes in `ids` (sorted by rank) whose path matched with `ncaps` captures on the stack.
  void consider(std::span<const std::uint32_t> ids, std::size_t ncaps) {
    for (const std::uint32_t id : ids) {
      const CompiledRoute& r = impl_.routes[id];
      if (r.rank >= best_rank_) return; // sorted: nothing later can win
      if (!r.methods.contains(req_.method)) {
        if (impl_.conditions_hold(r, req_)) allow_ = allow_ | r.methods;
        continue;
      }
      if (!impl_.conditions_hold(r, req_)) continue;
      best_rank_ = r.rank;
      best_ = id;
      best_caps_n_ = ncaps;
      std::copy_n(caps_.begin(), ncaps, best_caps_.begin());
      return;
    }
  }

  /// `pos` indexes path_ at a "/" (or its end); `ncaps` captures are on the stack.
  void walk(const Group& g, std::uint32_t node_id, std::size_t pos, std::size_t ncaps) {
    const Node& node = g.nodes[node_id];
    if (pos == path_.size()) {
      consider(node.templates, ncaps);
      consider(node.prefixes, ncaps);
      return;
    }
    // path_[pos] == '/': a prefix ending here matches, and so may a {rest...}.
    consider(node.prefixes, ncaps);
    consider(node.slash_prefixes, ncaps);
    if (!node.rest.empty() && pos + 1 < path_.size() && ncaps < caps_.size()) {
      caps_[ncaps] = path_.substr(pos + 1);
      consider(node.rest, ncaps + 1);
    }
    const std::size_t start = pos + 1;
    std::size_t end = path_.find('/', start);
    if (end == std::string_view::npos) end = path_.size();
    const std::string_view seg = path_.substr(start, end - start);
    if (!node.literal.empty()) {
      if (auto it = node.literal.find(seg); it != node.literal.end())
        walk(g, it->second, end, ncaps);
    }
    if (seg.empty()) return; // parameters never match an empty segment
    for (const auto& e : node.patterns) {
      if (ncaps + e.captures > caps_.size()) continue;
      if (e.segment.match(seg, caps_.data() + ncaps)) walk(g, e.child, end, ncaps + e.captures);
    }
  }

  void consider_regex(const Group& g) {
    for (const std::uint32_t id : g.regex) {
      const CompiledRoute& r = impl_.routes[id];
      if (r.rank >= best_rank_) return;
      if (!RE2::FullMatch(path_, *r.regex)) continue;
      consider(std::span<const std::uint32_t>(&id, 1), 0);
      if (best_ == id) return;
    }
  }

  const RouteTable::Impl& impl_;
  const Request& req_;
  std::string_view path_;
  std::array<std::string_view, model::kMaxTemplateParams> caps_{};
  std::array<std::string_view, model::kMaxTemplateParams> best_caps_{};
  std::size_t best_caps_n_ = 0;
  std::uint32_t best_ = kNone;
  std::uint32_t best_rank_ = kNone;
  model::MethodSet allow_;
};

class RouterCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "router"; }
  std::string message(int ev) const override {
    return ev == static_cast<int>(errc::bad_route) ? "bad_route" : "ok";
  }
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

  // Ranks: precedence without host tiers, which the group order already expresses.
  std::vector<std::pair<model::PrecedenceKey, std::uint32_t>> keys;
  keys.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i)
    keys.emplace_back(model::precedence_key(cfg.routes[i]), i);
  std::sort(keys.begin(), keys.end());
  for (std::uint32_t r = 0; r < n; ++r)
    impl->routes[keys[r].second].rank = r;

  auto group_for = [&](detail::StringMap<std::uint32_t>* map, const std::string& key,
                       std::string label) -> Group& {
    std::uint32_t* slot;
    if (!map) {
      slot = &impl->any_group;
    } else {
      auto [it, _] = map->try_emplace(key, detail::kNoGroup);
      slot = &it->second;
    }
    if (*slot == detail::kNoGroup) {
      *slot = static_cast<std::uint32_t>(impl->groups.size());
      impl->groups.emplace_back();
      impl->groups.back().label = std::move(label);
    }
    return impl->groups[*slot];
  };

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

    std::optional<model::PathTemplate> tmpl;
    switch (route.kind) {
    case model::MatchKind::regex:
      cr.regex = compile_regex(route.pattern);
      if (!cr.regex)
        return fail(errc::bad_route, "route \"" + route.name + "\": regex does not compile");
      break;
    case model::MatchKind::template_: {
      auto t = model::PathTemplate::parse(route.pattern);
      if (!t) return fail(errc::bad_route, "route \"" + route.name + "\": " + t.error().message);
      cr.param_names = t->param_names();
      tmpl = std::move(*t);
      break;
    }
    case model::MatchKind::exact:
    case model::MatchKind::prefix:
      if (route.pattern.empty() || route.pattern[0] != '/')
        return fail(errc::bad_route, "route \"" + route.name + "\": path must start with \"/\"");
      break;
    }

    auto insert = [&](Group& g) {
      switch (route.kind) {
      case model::MatchKind::exact:
        g.exact[route.pattern].push_back(i);
        break;
      case model::MatchKind::regex:
        g.regex.push_back(i);
        break;
      case model::MatchKind::template_: {
        std::uint32_t node = 0;
        for (const auto& seg : tmpl->segments())
          node = seg.literal() ? child_literal(g, node, seg.parts[0].text)
                               : child_pattern(g, node, seg);
        (tmpl->has_rest() ? g.nodes[node].rest : g.nodes[node].templates).push_back(i);
        break;
      }
      case model::MatchKind::prefix: {
        std::string_view p = route.pattern;
        const bool slash = p.back() == '/';
        if (slash) p.remove_suffix(1);
        std::uint32_t node = 0;
        std::size_t pos = 0;
        while (pos < p.size()) { // p[pos] == '/'
          std::size_t end = p.find('/', pos + 1);
          if (end == std::string_view::npos) end = p.size();
          node = child_literal(g, node, std::string(p.substr(pos + 1, end - pos - 1)));
          pos = end;
        }
        (slash ? g.nodes[node].slash_prefixes : g.nodes[node].prefixes).push_back(i);
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

  const auto by_rank = [&](std::uint32_t a, std::uint32_t b) {
    return impl->routes[a].rank < impl->routes[b].rank;
  };
  for (auto& g : impl->groups) {
    for (auto& [_, ids] : g.exact)
      std::sort(ids.begin(), ids.end(), by_rank);
    std::sort(g.regex.begin(), g.regex.end(), by_rank);
    for (auto& node : g.nodes) {
      std::sort(node.templates.begin(), node.templates.end(), by_rank);
      std::sort(node.rest.begin(), node.rest.end(), by_rank);
      std::sort(node.prefixes.begin(), node.prefixes.end(), by_rank);
      std::sort(node.slash_prefixes.begin(), node.slash_prefixes.end(), by_rank);
    }
  }
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
  std::array<char, 256> hbuf;
  const std::string_view host = normalize_host(req.host, hbuf);
  std::array<std::uint32_t, 64> gids;
  const std::size_t ng = impl_->groups_for(host, gids);
  model::MethodSet allow;
  for (std::size_t i = 0; i < ng; ++i) {
    Search s(*impl_, req, req.path);
    s.run(impl_->groups[gids[i]]);
    if (s.found()) {
      s.fill(m);
      return m;
    }
    allow = allow | s.allow();
  }
  m.allow = allow;
  m.status = allow.empty() ? MatchStatus::not_found : MatchStatus::method_not_allowed;
  return m;
}

} // namespace gw::router

namespace gw::router {

std::string rewritten_path(const model::Route& route, std::span<const Param> params,
                           std::string_view path) {
  if (route.rewrite.path) {
    // The template was validated: every {name} is a captured parameter.
    const std::string& t = *route.rewrite.path;
    std::string out;
    out.reserve(t.size() + 32);
    for (std::size_t i = 0; i < t.size();) {
      if (t[i] != '{') {
        out += t[i++];
        continue;
      }
      const std::size_t close = t.find('}', i);
      std::string_view name = std::string_view(t).substr(i + 1, close - i - 1);
      if (name.ends_with("...")) name.remove_suffix(3);
      for (const auto& p : params)
        if (p.name == name) out += p.value;
      i = close + 1;
    }
    return out;
  }
  if (route.rewrite.prefix && route.kind == model::MatchKind::prefix) {
    std::string_view matched = route.pattern;
    if (matched.size() > 1 && matched.back() == '/') matched.remove_suffix(1);
    std::string_view rest = path.substr(std::min(matched.size(), path.size()));
    std::string out = *route.rewrite.prefix;
    // Join without doubling or losing the "/" between the new prefix and the rest.
    if (!out.empty() && out.back() == '/' && rest.starts_with('/'))
      rest.remove_prefix(1);
    else if ((out.empty() || out.back() != '/') && !rest.empty() && !rest.starts_with('/'))
      out += '/';
    out += rest;
    if (out.empty()) out = "/";
    return out;
  }
  return std::string(path);
}

} // namespace gw::router
