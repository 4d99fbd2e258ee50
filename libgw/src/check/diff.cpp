#include "gw/check/diff.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/model/precedence.hpp"
#include "gw/router/explain.hpp"

namespace gw::check {
namespace {

using model::Config;
using model::Route;

std::string ms(std::uint32_t v) {
  return v == 0 ? "none" : units::format_duration(units::Millis(v));
}

std::string matchers(const std::vector<model::Matcher>& ms) {
  std::string s;
  for (const auto& m : ms) {
    if (!s.empty()) s += ", ";
    s += (m.invert ? "!" : "") + m.name + " " + std::string(model::to_string(m.op));
    if (m.op != model::MatchOp::present) s += " " + text::quote(m.value);
  }
  return s.empty() ? "none" : s;
}

std::string opt(const std::optional<std::string>& o) {
  return o ? text::quote(*o) : "none";
}

std::string list(const std::vector<std::string>& v) {
  return v.empty() ? "any" : text::join(v, ", ");
}

template <class T>
void field(std::vector<std::string>& out, const char* name, const T& a, const T& b) {
  if (a != b) out.push_back(std::string(name) + ": " + a + " -> " + b);
}

std::vector<std::string> route_changes(const Route& a, const Config& ca, const Route& b,
                                       const Config& cb) {
  std::vector<std::string> d;
  field(d, "methods", a.methods.to_string(), b.methods.to_string());
  field(d, "hosts", list(a.hosts), list(b.hosts));
  field(d, "match", std::string(model::to_string(a.kind)) + " " + text::quote(a.pattern),
        std::string(model::to_string(b.kind)) + " " + text::quote(b.pattern));
  field(d, "priority", std::to_string(a.priority), std::to_string(b.priority));
  field(d, "upstream", ca.upstreams[a.upstream].name, cb.upstreams[b.upstream].name);
  field(d, "timeout", ms(a.timeout_ms), ms(b.timeout_ms));
  field(d, "per_try_timeout", ms(a.per_try_timeout_ms), ms(b.per_try_timeout_ms));
  field(d, "retries", std::to_string(a.retries), std::to_string(b.retries));
  field(d, "max_body", a.max_body ? units::format_size(a.max_body) : std::string("unlimited"),
        b.max_body ? units::format_size(b.max_body) : std::string("unlimited"));
  std::vector<std::string> pa, pb;
  for (auto i : a.policies)
    pa.push_back(ca.policies[i].name);
  for (auto i : b.policies)
    pb.push_back(cb.policies[i].name);
  field(d, "policies", pa.empty() ? std::string("none") : text::join(pa, ", "),
        pb.empty() ? std::string("none") : text::join(pb, ", "));
  field(d, "headers", matchers(a.headers), matchers(b.headers));
  field(d, "query", matchers(a.query), matchers(b.query));
  field(d, "rewrite.path", opt(a.rewrite.path), opt(b.rewrite.path));
  field(d, "rewrite.prefix", opt(a.rewrite.prefix), opt(b.rewrite.prefix));
  field(d, "rewrite.host", opt(a.rewrite.host), opt(b.rewrite.host));
  return d;
}

std::string endpoint_text(const model::Endpoint& e) {
  return e.address() + (e.weight != 1 ? " (weight " + std::to_string(e.weight) + ")" : "");
}

bool hosts_overlap(const Route& a, const Route& b) {
  if (a.hosts.empty() || b.hosts.empty()) return a.hosts.empty() && b.hosts.empty();
  for (const auto& h : a.hosts)
    if (std::find(b.hosts.begin(), b.hosts.end(), h) != b.hosts.end()) return true;
  return false;
}

/// Do routes a and b compete for some request (same host group, overlapping methods, and one's
/// example path is accepted by the other)?
bool compete(const Route& a, const Route& b) {
  if (!hosts_overlap(a, b) || !a.methods.intersects(b.methods)) return false;
  return router::common_path(a, b).has_value();
}

/// A request that route `from` of `before` took and route `to` of `after` takes: a path both
/// routes accept, with the conditions of both, checked with both tables' matchers.
std::string switched_request(const router::RouteTable& before, std::uint32_t from,
                             const router::RouteTable& after, std::uint32_t to) {
  const Route& f = before.config().routes[from];
  const Route& t = after.config().routes[to];
  const auto path = router::common_path(f, t);
  const model::MethodSet methods = f.methods & t.methods;
  if (!path || methods.empty()) return "";
  std::string host = "*";
  for (const auto& h : t.hosts)
    if (std::find(f.hosts.begin(), f.hosts.end(), h) != f.hosts.end()) {
      host = h;
      break;
    }
  const auto ex = router::ExampleRequest::build(t, host, *path, methods.first(), &f);
  if (!ex || !ex->complete()) return "";
  const auto was = before.match(ex->request());
  const auto now = after.match(ex->request());
  if (!was.matched() || was.route != from || !now.matched() || now.route != to) return "";
  return ex->text();
}

/// Finds routes that swapped order between two tables (indices are into the new table's routes).
class Precedence {
public:
  Precedence(const router::RouteTable& old_table, const router::RouteTable& new_table,
             const std::map<std::string, std::uint32_t>& old_index, std::vector<Change>& out)
      : old_(old_table), new_(new_table), old_index_(old_index), out_(out) {}

  /// Reports routes i and j when they compete in both tables and their order flipped.
  void consider(std::uint32_t i, std::uint32_t j) {
    const auto oi = old_of(i), oj = old_of(j);
    if (!oi || !oj) return;
    const auto& nr = new_.config().routes;
    const auto& orr = old_.config().routes;
    if (!compete(nr[i], nr[j]) || !compete(orr[*oi], orr[*oj])) return;
    const auto ni = model::precedence_key(nr[i]), nj = model::precedence_key(nr[j]);
    const auto pi = model::precedence_key(orr[*oi]), pj = model::precedence_key(orr[*oj]);
    const bool before_now = ni < nj;
    if (before_now == (pi < pj)) return;
    const std::uint32_t first = before_now ? i : j, second = before_now ? j : i;
    const Route& f = nr[first];
    const Route& s = nr[second];
    if (!seen_.insert({f.name, s.name}).second) return;
    const bool by_declaration = ni.same_rank(nj) && pi.same_rank(pj);
    Change c{Change::Kind::precedence, "route", f.name, {}, s.name, ""};
    c.details.push_back("now takes precedence over " + text::quote(s.name) +
                        (by_declaration ? " (equal precedence: it is declared first now)"
                                        : " (it came after before)"));
    c.example = switched_request(old_, *old_of(second), new_, first);
    if (!c.example.empty())
      c.details.push_back("e.g. " + c.example + " went to " + text::quote(s.name) +
                          ", now goes to " + text::quote(f.name));
    out_.push_back(std::move(c));
  }

  /// Routes of equal precedence in both tables whose declaration order flipped: inversions of
  /// the old order within each group of equals of the new table (O(n log n) plus the flips).
  void declaration_flips() {
    const auto& nr = new_.config().routes;
    const auto& orr = old_.config().routes;
    std::map<std::tuple<std::uint8_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t>,
             std::vector<std::uint32_t>>
        equals;
    for (std::uint32_t i = 0; i < nr.size(); ++i) {
      if (!old_of(i)) continue;
      const auto k = model::precedence_key(nr[i]);
      equals[{k.kind, k.a, k.b, k.c, k.conditions}].push_back(i);
    }
    for (auto& [_, group] : equals) {
      std::sort(group.begin(), group.end(),
                [&](std::uint32_t x, std::uint32_t y) { return nr[x].decl < nr[y].decl; });
      std::set<std::pair<std::uint32_t, std::uint32_t>> earlier; // (old declaration, new index)
      for (const std::uint32_t j : group) {
        const std::uint32_t dj = orr[*old_of(j)].decl;
        for (auto it = earlier.upper_bound({dj, 0xffffffffu}); it != earlier.end(); ++it)
          consider(it->second, j);
        earlier.insert({dj, j});
      }
    }
  }

private:
  std::optional<std::uint32_t> old_of(std::uint32_t i) const {
    const auto it = old_index_.find(new_.config().routes[i].name);
    if (it == old_index_.end()) return std::nullopt;
    return it->second;
  }

  const router::RouteTable& old_;
  const router::RouteTable& new_;
  const std::map<std::string, std::uint32_t>& old_index_;
  std::vector<Change>& out_;
  std::set<std::pair<std::string, std::string>> seen_;
};

} // namespace

std::string_view to_string(Change::Kind k) noexcept {
  switch (k) {
  case Change::Kind::added:
    return "added";
  case Change::Kind::removed:
    return "removed";
  case Change::Kind::changed:
    return "changed";
  case Change::Kind::precedence:
    return "precedence";
  }
  return "?";
}

std::vector<Change> diff(const router::RouteTable& old_table, const router::RouteTable& new_table) {
  const Config& a = old_table.config();
  const Config& b = new_table.config();
  std::vector<Change> out;

  // Upstreams (sorted by name in both).
  {
    std::map<std::string, const model::Upstream*> ua, ub;
    for (const auto& u : a.upstreams)
      ua[u.name] = &u;
    for (const auto& u : b.upstreams)
      ub[u.name] = &u;
    for (const auto& [name, u] : ua)
      if (!ub.count(name)) out.push_back({Change::Kind::removed, "upstream", name, {}, {}, {}});
    for (const auto& [name, u] : ub) {
      auto it = ua.find(name);
      if (it == ua.end()) {
        out.push_back({Change::Kind::added, "upstream", name, {}, {}, {}});
        continue;
      }
      const model::Upstream& x = *it->second;
      std::vector<std::string> d;
      std::vector<std::string> ea, eb;
      for (const auto& e : x.endpoints)
        ea.push_back(endpoint_text(e));
      for (const auto& e : u->endpoints)
        eb.push_back(endpoint_text(e));
      for (const auto& e : ea)
        if (std::find(eb.begin(), eb.end(), e) == eb.end()) d.push_back("endpoint removed: " + e);
      for (const auto& e : eb)
        if (std::find(ea.begin(), ea.end(), e) == ea.end()) d.push_back("endpoint added: " + e);
      field(d, "balance", std::string(model::to_string(x.balance)),
            std::string(model::to_string(u->balance)));
      field(d, "hash_on", std::string(model::to_string(x.hash_on)) + " " + x.hash_key,
            std::string(model::to_string(u->hash_on)) + " " + u->hash_key);
      field(d, "connect_timeout", ms(x.connect_timeout_ms), ms(u->connect_timeout_ms));
      if (!d.empty())
        out.push_back({Change::Kind::changed, "upstream", name, std::move(d), {}, {}});
    }
  }
  // Policies.
  {
    std::map<std::string, const model::Policy*> pa, pb;
    for (const auto& p : a.policies)
      pa[p.name] = &p;
    for (const auto& p : b.policies)
      pb[p.name] = &p;
    for (const auto& [name, p] : pa)
      if (!pb.count(name)) out.push_back({Change::Kind::removed, "policy", name, {}, {}, {}});
    for (const auto& [name, p] : pb) {
      auto it = pa.find(name);
      if (it == pa.end()) {
        out.push_back({Change::Kind::added, "policy", name, {}, {}, {}});
        continue;
      }
      std::vector<std::string> d;
      field(d, "kind", it->second->kind, p->kind);
      field(d, "settings", it->second->config, p->config);
      if (!d.empty()) out.push_back({Change::Kind::changed, "policy", name, std::move(d), {}, {}});
    }
  }
  // Routes, in the new table's precedence order.
  std::map<std::string, std::uint32_t> ra, rb;
  for (std::uint32_t i = 0; i < a.routes.size(); ++i)
    ra[a.routes[i].name] = i;
  for (std::uint32_t i = 0; i < b.routes.size(); ++i)
    rb[b.routes[i].name] = i;
  for (const auto& r : a.routes)
    if (!rb.count(r.name))
      out.push_back({Change::Kind::removed,
                     "route",
                     r.name,
                     {std::string(model::to_string(r.kind)) + " " + text::quote(r.pattern)},
                     {},
                     {}});
  std::vector<std::uint32_t> moved; // indices into b of routes whose matching changed
  for (std::uint32_t i = 0; i < b.routes.size(); ++i) {
    const Route& r = b.routes[i];
    auto it = ra.find(r.name);
    if (it == ra.end()) {
      out.push_back({Change::Kind::added,
                     "route",
                     r.name,
                     {std::string(model::to_string(r.kind)) + " " + text::quote(r.pattern)},
                     {},
                     {}});
      continue;
    }
    const Route& old = a.routes[it->second];
    auto d = route_changes(old, a, r, b);
    if (!d.empty()) out.push_back({Change::Kind::changed, "route", r.name, std::move(d), {}, {}});
    auto ka = model::precedence_key(old), kb = model::precedence_key(r);
    if (!ka.same_rank(kb) || old.methods != r.methods || old.hosts != r.hosts ||
        old.pattern != r.pattern)
      moved.push_back(i);
  }
  // Precedence: pairs of surviving routes that compete and swapped order, because one's
  // precedence changed or, between equals, their declaration order did.
  Precedence prec(old_table, new_table, ra, out);
  for (std::uint32_t i : moved)
    for (std::uint32_t j = 0; j < b.routes.size(); ++j)
      if (j != i) prec.consider(i, j);
  prec.declaration_flips();
  return out;
}

} // namespace gw::check
