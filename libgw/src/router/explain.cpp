#include "gw/router/explain.hpp"

#include <algorithm>

#include "compiled.hpp"
#include "gw/core/text.hpp"
#include "gw/model/path_template.hpp"
#include "gw/model/precedence.hpp"
#include "gw/uri/normalize.hpp"

namespace gw::router {
namespace {

/// Position of the host group through which route `r` applies to `host` (smaller = more
/// specific), or -1 when the route does not apply to the host at all.
long host_position(const model::Route& r, std::string_view host,
                   const std::vector<std::string>& groups) {
  if (r.hosts.empty()) {
    auto it = std::find(groups.begin(), groups.end(), "*");
    return it == groups.end() ? -1 : it - groups.begin();
  }
  long best = -1;
  for (const auto& h : r.hosts) {
    bool applies = h == host;
    if (!applies && h.starts_with("*.")) {
      const std::string_view suffix = std::string_view(h).substr(1);
      applies = host.size() > suffix.size() && host.ends_with(suffix);
    }
    if (!applies) continue;
    auto it = std::find(groups.begin(), groups.end(), h);
    if (it != groups.end() && (best < 0 || it - groups.begin() < best)) best = it - groups.begin();
  }
  return best;
}

std::string why_outranked(const model::Route& winner, const model::Route& loser, long wpos,
                          long lpos, const model::Config& cfg) {
  if (wpos != lpos) return "its host match is less specific";
  const auto w = model::precedence_key(winner), l = model::precedence_key(loser);
  if (w.kind != l.kind)
    return std::string(model::to_string(winner.kind)) + " beats " +
           std::string(model::to_string(loser.kind));
  if (w.a != l.a || w.b != l.b || w.c != l.c) {
    switch (winner.kind) {
    case model::MatchKind::template_:
      if (w.a != l.a)
        return "more literal characters (" + std::to_string(-w.a) + " vs " + std::to_string(-l.a) +
               ")";
      if (w.b != l.b)
        return "more segments (" + std::to_string(-w.b) + " vs " + std::to_string(-l.b) + ")";
      return "no {rest...} parameter";
    case model::MatchKind::prefix:
      return "longer prefix (" + std::to_string(-w.a) + " vs " + std::to_string(-l.a) + ")";
    case model::MatchKind::regex:
      return "higher priority (" + std::to_string(winner.priority) + " vs " +
             std::to_string(loser.priority) + ")";
    default:
      break;
    }
  }
  if (w.conditions != l.conditions) return "more header/query conditions";
  const std::string where = cfg.where(winner.src);
  return "declared earlier" + (where.empty() ? "" : " (" + where + ")");
}

/// The path structure of a route: segments, then what may follow them.
struct Shape {
  enum class Tail { none, open, slash, rest }; // open: "" or "/..."; slash: "/..."; rest: "/x..."
  std::vector<model::TemplateSegment> segments;
  Tail tail = Tail::none;
};

std::optional<Shape> shape_of(const model::Route& r) {
  Shape s;
  auto literal_segments = [&](std::string_view p) {
    std::size_t pos = 0;
    while (pos < p.size()) {
      std::size_t end = p.find('/', pos + 1);
      if (end == std::string_view::npos) end = p.size();
      model::TemplateSegment seg;
      seg.parts.push_back({false, std::string(p.substr(pos + 1, end - pos - 1))});
      s.segments.push_back(std::move(seg));
      pos = end;
    }
  };
  switch (r.kind) {
  case model::MatchKind::exact:
    literal_segments(r.pattern);
    return s;
  case model::MatchKind::prefix: {
    std::string_view p = r.pattern;
    const bool slash = p.back() == '/';
    if (slash) p.remove_suffix(1);
    literal_segments(p);
    s.tail = slash ? Shape::Tail::slash : Shape::Tail::open;
    return s;
  }
  case model::MatchKind::template_: {
    auto t = model::PathTemplate::parse(r.pattern);
    if (!t) return std::nullopt;
    s.segments = t->segments();
    if (t->has_rest()) s.tail = Shape::Tail::rest;
    return s;
  }
  case model::MatchKind::regex:
    return std::nullopt;
  }
  return std::nullopt;
}

std::string sample(const model::TemplateSegment& seg) {
  std::string out;
  for (const auto& p : seg.parts)
    out += p.param ? std::string("x") : p.text;
  return out;
}

/// Merges two shapes into one witness path, or nullopt when they obviously cannot meet.
std::optional<std::string> merge(const Shape& a, const Shape& b) {
  std::string path;
  std::array<std::string_view, model::kMaxTemplateParams> scratch;
  const std::size_t n = std::max(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < n; ++i) {
    const model::TemplateSegment* sa = i < a.segments.size() ? &a.segments[i] : nullptr;
    const model::TemplateSegment* sb = i < b.segments.size() ? &b.segments[i] : nullptr;
    std::string piece;
    if (sa && sb) {
      if (sa->literal())
        piece = sa->parts[0].text;
      else if (sb->literal())
        piece = sb->parts[0].text;
      else if (const std::string x = sample(*sa); sb->match(x, scratch.data()))
        piece = x;
      else if (const std::string y = sample(*sb); sa->match(y, scratch.data()))
        piece = y;
      else
        return std::nullopt;
    } else {
      const Shape& shorter = sa ? b : a;
      if (shorter.tail == Shape::Tail::none) return std::nullopt;
      piece = sample(sa ? *sa : *sb);
    }
    path += "/" + piece;
  }
  const bool need_more =
      (a.segments.size() == n && (a.tail == Shape::Tail::rest || a.tail == Shape::Tail::slash)) ||
      (b.segments.size() == n && (b.tail == Shape::Tail::rest || b.tail == Shape::Tail::slash));
  if (need_more) path += "/x";
  if (path.empty()) path = "/";
  return path;
}

/// A value satisfying matcher `m`; nullopt when none can be made up (regex), or when absence
/// satisfies it (inverted), which sets `absent`.
std::optional<std::string> sample_value(const model::Matcher& m, bool& absent) {
  absent = m.invert;
  if (m.invert) return std::nullopt;
  switch (m.op) {
  case model::MatchOp::exact:
  case model::MatchOp::contains:
  case model::MatchOp::prefix:
  case model::MatchOp::suffix:
    return m.value;
  case model::MatchOp::present:
    return std::string("1");
  case model::MatchOp::regex:
    return std::nullopt;
  }
  return std::nullopt;
}

} // namespace

bool ExampleRequest::Headers::find(std::string_view name, std::string_view& v) const {
  const auto it = values.find(std::string(name));
  if (it == values.end()) return false;
  v = it->second;
  return true;
}

std::optional<ExampleRequest> ExampleRequest::build(const model::Route& r,
                                                    const std::string& host_label, std::string path,
                                                    model::Method method,
                                                    const model::Route* also) {
  if (path.empty()) return std::nullopt;
  ExampleRequest ex;
  ex.method_ = method;
  if (host_label != "*")
    ex.host_ = host_label.starts_with("*.") ? "a" + host_label.substr(1) : host_label;
  ex.path_ = std::move(path);
  if (!ex.add_conditions(r) || (also && !ex.add_conditions(*also))) return std::nullopt;
  return ex;
}

bool ExampleRequest::add_conditions(const model::Route& r) {
  for (const auto& m : r.headers) {
    bool absent;
    auto v = sample_value(m, absent);
    if (absent) continue;
    if (!v) {
      complete_ = false;
      continue;
    }
    auto [it, fresh] = headers_.values.emplace(m.name, *v);
    if (!fresh && it->second != *v) return false; // contradictory requirements
  }
  for (const auto& m : r.query) {
    bool absent;
    auto v = sample_value(m, absent);
    if (absent) continue;
    if (!v) {
      complete_ = false;
      continue;
    }
    if (!query_.empty()) query_ += '&';
    query_ += m.name + "=" + *v;
  }
  return true;
}

Request ExampleRequest::request() const noexcept {
  Request req;
  // Any host will do for the any-host group, as long as no host-specific group claims it.
  req.host = host_.empty() ? std::string_view("gw.invalid") : std::string_view(host_);
  req.method = method_;
  req.path = path_;
  req.query = query_;
  req.headers = &headers_;
  return req;
}

std::string ExampleRequest::text() const {
  std::string s = std::string(model::to_string(method_)) + " ";
  s += host_.empty() ? path_ : "http://" + host_ + path_;
  if (!query_.empty()) s += "?" + query_;
  for (const auto& [k, v] : headers_.values)
    s += " with " + k + ": " + v;
  return s;
}

std::string example_path(const model::Route& r) {
  switch (r.kind) {
  case model::MatchKind::exact:
  case model::MatchKind::prefix:
    return r.pattern;
  case model::MatchKind::template_:
    if (auto t = model::PathTemplate::parse(r.pattern)) return t->example("1");
    return "";
  case model::MatchKind::regex: {
    RE2::Options opt;
    opt.set_log_errors(false);
    RE2 re(r.pattern, opt);
    std::string mn, mx;
    if (re.ok() && re.PossibleMatchRange(&mn, &mx, 64) && RE2::FullMatch(mn, re)) return mn;
    return "";
  }
  }
  return "";
}

std::optional<std::string> common_path(const model::Route& a, const model::Route& b) {
  std::vector<std::string> candidates{example_path(a), example_path(b)};
  auto sa = shape_of(a), sb = shape_of(b);
  if (sa && sb)
    if (auto m = merge(*sa, *sb)) candidates.insert(candidates.begin(), *m);
  for (const auto& c : candidates)
    if (!c.empty() && path_matches(a, c) && path_matches(b, c)) return c;
  return std::nullopt;
}

std::string_view to_string(Verdict v) noexcept {
  switch (v) {
  case Verdict::chosen:
    return "chosen";
  case Verdict::outranked:
    return "outranked";
  case Verdict::host:
    return "host";
  case Verdict::method:
    return "method";
  case Verdict::header:
    return "header";
  case Verdict::query:
    return "query";
  }
  return "?";
}

bool path_matches(const model::Route& r, std::string_view path,
                  std::vector<std::pair<std::string, std::string>>* params) {
  switch (r.kind) {
  case model::MatchKind::exact:
    return path == r.pattern;
  case model::MatchKind::prefix: {
    const std::string& p = r.pattern;
    if (p.back() == '/') return path.starts_with(p);
    return path == p || (path.starts_with(p) && path.size() > p.size() && path[p.size()] == '/');
  }
  case model::MatchKind::regex: {
    RE2::Options opt;
    opt.set_log_errors(false);
    RE2 re(r.pattern, opt);
    return re.ok() && RE2::FullMatch(path, re);
  }
  case model::MatchKind::template_: {
    auto t = model::PathTemplate::parse(r.pattern);
    if (!t) return false;
    std::vector<std::string_view> caps(t->param_names().size());
    std::size_t ci = 0, pos = 0;
    for (const auto& seg : t->segments()) {
      if (pos >= path.size() || path[pos] != '/') return false;
      std::size_t end = path.find('/', pos + 1);
      if (end == std::string_view::npos) end = path.size();
      const std::string_view s = path.substr(pos + 1, end - pos - 1);
      if (seg.literal()) {
        if (s != seg.parts[0].text) return false;
      } else {
        if (s.empty() || !seg.match(s, caps.data() + ci)) return false;
        ci += seg.param_count();
      }
      pos = end;
    }
    if (t->has_rest()) {
      if (pos + 1 >= path.size() || path[pos] != '/') return false;
      caps[ci++] = path.substr(pos + 1);
    } else if (pos != path.size()) {
      return false;
    }
    if (params)
      for (std::size_t i = 0; i < ci; ++i)
        params->emplace_back(t->param_names()[i], std::string(caps[i]));
    return true;
  }
  }
  return false;
}

Explanation explain(const RouteTable& table, const Request& req) {
  const auto& impl = table.impl();
  const model::Config& cfg = table.config();
  Explanation ex;
  std::array<char, 256> hbuf;
  ex.host = std::string(normalize_host(req.host, hbuf));
  std::array<std::uint32_t, 64> gids;
  const std::size_t ng = impl.groups_for(ex.host, gids);
  for (std::size_t i = 0; i < ng; ++i)
    ex.host_groups.push_back(impl.groups[gids[i]].label);
  ex.match = table.match(req);

  struct Eval {
    std::uint32_t id;
    long pos;
    Verdict v;
    std::string reason;
  };
  std::vector<Eval> evals;
  for (std::uint32_t i = 0; i < cfg.routes.size(); ++i) {
    const model::Route& r = cfg.routes[i];
    if (!path_matches(r, req.path)) continue;
    const auto& cr = impl.routes[i];
    Eval e{i, host_position(r, ex.host, ex.host_groups), Verdict::chosen, {}};
    if (e.pos < 0) {
      e.v = Verdict::host;
      std::vector<std::string> hs(r.hosts.begin(), r.hosts.end());
      e.reason = (ex.host.empty() ? std::string("the request has no Host; the route needs ")
                                  : "host " + text::quote(ex.host) + " is not one of ") +
                 text::join(hs, ", ");
    } else if (!r.methods.contains(req.method)) {
      e.v = Verdict::method;
      e.reason = "method " + std::string(model::to_string(req.method)) + " is not one of " +
                 r.methods.to_string();
    } else {
      for (const auto& h : cr.headers) {
        std::string_view v;
        const bool found = req.headers && req.headers->find(h.m->name, v);
        if (!matcher_holds(h, found, v)) {
          e.v = Verdict::header;
          e.reason = "header " + h.m->name +
                     (h.m->invert ? " must not satisfy " : " must satisfy ") +
                     std::string(model::to_string(h.m->op)) +
                     (h.m->op == model::MatchOp::present ? "" : " " + text::quote(h.m->value)) +
                     (found ? ", found " + text::quote(v) : ", but it is absent");
          break;
        }
      }
      if (e.v == Verdict::chosen) {
        for (const auto& q : cr.query) {
          bool found = false;
          std::string value;
          uri::for_each_query_param(req.query, [&](std::string_view k, std::string_view v) {
            if (k != q.m->name) return true;
            found = true;
            value = v;
            return false;
          });
          if (!matcher_holds(q, found, value)) {
            e.v = Verdict::query;
            e.reason = "query parameter " + q.m->name + " must " + (q.m->invert ? "not " : "") +
                       "satisfy " + std::string(model::to_string(q.m->op)) +
                       (q.m->op == model::MatchOp::present ? "" : " " + text::quote(q.m->value)) +
                       (found ? ", found " + text::quote(value) : ", but it is absent");
            break;
          }
        }
      }
    }
    evals.push_back(std::move(e));
  }

  // The reference winner: most specific host group, then best rank.
  const Eval* best = nullptr;
  for (const auto& e : evals) {
    if (e.v != Verdict::chosen) continue;
    if (!best || e.pos < best->pos ||
        (e.pos == best->pos && impl.routes[e.id].rank < impl.routes[best->id].rank))
      best = &e;
  }
  if (best) ex.reference = best->id;
  for (auto& e : evals) {
    if (e.v == Verdict::chosen && best && e.id != best->id) {
      e.v = Verdict::outranked;
      e.reason = "outranked by " + text::quote(cfg.routes[best->id].name) + ": " +
                 why_outranked(cfg.routes[best->id], cfg.routes[e.id], best->pos, e.pos, cfg);
    }
  }
  std::stable_sort(evals.begin(), evals.end(), [&](const Eval& a, const Eval& b) {
    if ((a.v == Verdict::chosen) != (b.v == Verdict::chosen)) return a.v == Verdict::chosen;
    return impl.routes[a.id].rank < impl.routes[b.id].rank;
  });
  for (auto& e : evals)
    ex.candidates.push_back(Candidate{e.id, e.v, std::move(e.reason)});

  if (!ex.reference) {
    // A common slip: the route exists with (or without) a trailing slash.
    std::string other(req.path);
    if (other.size() > 1 && other.back() == '/')
      other.pop_back();
    else
      other += '/';
    Request again = req;
    again.path = other;
    if (const Match m = table.match(again); m.matched())
      ex.notes.push_back("route " + text::quote(cfg.routes[m.route].name) + " matches " +
                         text::quote(other) + " (trailing slashes are significant)");
  }
  return ex;
}

std::optional<std::string>
SampleRequest::read(std::string_view method, std::string_view url,
                    const std::vector<std::pair<std::string, std::string>>& headers) {
  rejected_ = false;
  req_ = Request{};
  headers_.values.clear();
  method_ = method;
  auto parts = uri::split_url(url);
  if (!parts) return parts.error().message;
  host_ = parts->host;
  target_ = parts->target;
  for (const auto& [k, v] : headers) {
    std::string name = text::lower(k);
    if (name == "host")
      host_ = v; // as on the wire: the Host header names the authority
    else
      headers_.values.emplace_back(std::move(name), v);
  }
  auto target = uri::parse_target(target_, pathbuf_);
  if (!target) {
    rejected_ = true;
    return target.error().message;
  }
  req_.host = host_;
  req_.method = model::classify_method(method_);
  req_.path = target->path;
  req_.query = target->query;
  req_.headers = &headers_;
  return std::nullopt;
}

} // namespace gw::router
