#include "gw/router/analysis.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "compiled.hpp"
#include "gw/core/text.hpp"
#include "gw/model/path_template.hpp"
#include "gw/model/precedence.hpp"
#include "gw/router/explain.hpp"
#include "gw/uri/normalize.hpp"

namespace gw::router {
namespace {

using model::Matcher;
using model::MatchOp;
using model::Route;

bool is_canonical(const std::string& path) {
  std::string buf;
  const auto t = uri::parse_target(path, buf);
  return t && t->path == path && t->query.empty();
}

/// What RE2 can tell about every path a regex matches, without a parse tree. PossibleMatchRange
/// bounds each match s by min <= s <= max; strings between two that share a prefix share it too,
/// so every match starts with the common prefix of min and max (`lead`). Equal bounds mean the
/// regex matches at most that one string (`single`).
struct RegexBounds {
  std::string min, lead;
  bool single = false;
};

std::optional<RegexBounds> regex_bounds(const RE2& re) {
  RegexBounds b;
  std::string max;
  if (!re.PossibleMatchRange(&b.min, &max, 64)) return std::nullopt;
  const auto diff = std::mismatch(b.min.begin(), b.min.end(), max.begin(), max.end());
  b.lead.assign(b.min.begin(), diff.first);
  b.single = b.min == max;
  if (b.single && !RE2::FullMatch(b.min, re)) return std::nullopt; // it matches nothing
  return b;
}

/// Paths to try a regex route with: its smallest match and small variations of it and of its
/// literal lead (more characters, another segment), those it accepts and that are canonical.
std::vector<std::string> regex_samples(const RE2& re, const RegexBounds& b) {
  std::set<std::string> out;
  for (const std::string& base : {b.min, b.lead})
    for (const char* more : {"", "/", "1", "x", "a.b", "-", "/1", "/x", "/a.b", "/1/1", "/x/y"}) {
      std::string p = base + more;
      if (RE2::FullMatch(p, re) && is_canonical(p)) out.insert(std::move(p));
    }
  return {out.begin(), out.end()};
}

/// Two condition lists that no request can satisfy together (same name, different exact values).
bool contradictory(const std::vector<Matcher>& a, const std::vector<Matcher>& b) {
  for (const auto& x : a)
    for (const auto& y : b)
      if (x.name == y.name && x.op == MatchOp::exact && y.op == MatchOp::exact && !x.invert &&
          !y.invert && x.value != y.value)
        return true;
  return false;
}

bool conditions_subset(const Route& a, const Route& b) {
  return std::includes(b.headers.begin(), b.headers.end(), a.headers.begin(), a.headers.end()) &&
         std::includes(b.query.begin(), b.query.end(), a.query.begin(), a.query.end());
}

class Analyzer {
public:
  Analyzer(const RouteTable& table, Diagnostics& diags, std::size_t cap)
      : table_(table), impl_(table.impl()), cfg_(table.config()), diags_(diags), cap_(cap) {}

  void run() {
    collect_groups();
    templates_.resize(cfg_.routes.size());
    for (std::uint32_t i = 0; i < cfg_.routes.size(); ++i)
      if (cfg_.routes[i].kind == model::MatchKind::template_)
        if (auto t = model::PathTemplate::parse(cfg_.routes[i].pattern))
          templates_[i] = std::move(*t);
    keys_.reserve(cfg_.routes.size());
    for (std::uint32_t i = 0; i < cfg_.routes.size(); ++i)
      keys_.push_back(
          model::precedence_key(cfg_.routes[i], templates_[i] ? &*templates_[i] : nullptr));
    for (const auto& [label, ids] : groups_) {
      same_key(label, ids);
      regex_covered(label, ids);
      template_ties(label, ids);
      regex_ties(label, ids);
    }
    report_shadowed();
    report_likely_shadowed();
    if (suppressed_ambiguous_ > 0)
      diags_.add(Severity::note, "route.ambiguous", SourceLoc{},
                 std::to_string(suppressed_ambiguous_) + " more ambiguous route pairs not shown");
  }

private:
  const Route& route(std::uint32_t i) const { return cfg_.routes[i]; }
  std::uint32_t rank(std::uint32_t i) const { return impl_.routes[i].rank; }

  SourceLoc loc(const Route& r) const {
    SourceLoc l;
    if (r.src.file < cfg_.sources.size()) l.file = cfg_.source_file(r.src.file);
    l.line = r.src.line;
    l.col = r.src.col;
    return l;
  }

  std::string where(const Route& r) const {
    const std::string w = cfg_.where(r.src);
    return w.empty() ? "" : " (" + w + ")";
  }

  void collect_groups() {
    for (std::uint32_t i = 0; i < cfg_.routes.size(); ++i) {
      const Route& r = route(i);
      if (r.hosts.empty()) groups_["*"].push_back(i);
      for (const auto& h : r.hosts)
        groups_[h].push_back(i);
      group_count_[i] = r.hosts.empty() ? 1 : r.hosts.size();
    }
    for (auto& [_, ids] : groups_)
      std::sort(ids.begin(), ids.end(), [&](auto a, auto b) { return rank(a) < rank(b); });
  }

  std::string match_key(const Route& r, std::uint32_t id) const {
    std::string k(1, static_cast<char>('0' + static_cast<int>(r.kind)));
    if (r.kind == model::MatchKind::template_ && templates_[id])
      k += templates_[id]->shape();
    else
      k += r.pattern;
    return k;
  }

  std::string example_path(std::uint32_t id) const { return router::example_path(route(id)); }

  /// An example request of route `b` in group `label`, also satisfying `also`'s conditions.
  std::optional<ExampleRequest> example_for(std::uint32_t b, const std::string& label,
                                            std::string path, model::Method method,
                                            const Route* also = nullptr) const {
    return ExampleRequest::build(route(b), label, std::move(path), method, also);
  }

  Match decide(const ExampleRequest& ex) const { return table_.match(ex.request()); }

  void same_key(const std::string& label, const std::vector<std::uint32_t>& ids) {
    std::unordered_map<std::string, std::vector<std::uint32_t>> by_key;
    for (auto id : ids)
      by_key[match_key(route(id), id)].push_back(id);
    for (auto& [_, list] : by_key) {
      if (list.size() < 2) continue;
      for (std::size_t bi = 1; bi < list.size(); ++bi) {
        const std::uint32_t b = list[bi];
        const Route& B = route(b);
        model::MethodSet covering;
        std::optional<std::uint32_t> first;
        for (std::size_t ai = 0; ai < bi; ++ai) {
          const std::uint32_t a = list[ai];
          const Route& A = route(a);
          if (A.methods == B.methods && A.headers == B.headers && A.query == B.query &&
              A.hosts == B.hosts) {
            if (duplicates_.insert(b).second)
              diags_
                  .error("route.duplicate", loc(B),
                         "routes " + text::quote(A.name) + " and " + text::quote(B.name) +
                             " accept exactly the same requests")
                  .with_hint("remove one of them, or tell them apart by methods, hosts or "
                             "conditions; " +
                             text::quote(A.name) + " is at" + where(A));
            break;
          }
          if (conditions_subset(A, B)) {
            if (!first && A.methods.intersects(B.methods)) first = a;
            covering = covering | (A.methods & B.methods);
          } else if (keys_[a].same_rank(keys_[b]) && A.methods.intersects(B.methods) &&
                     !contradictory(A.headers, B.headers) && !contradictory(A.query, B.query)) {
            ambiguous(a, b, label, example_path(b), (A.methods & B.methods).first());
          }
        }
        if (first && B.methods.subset_of(covering)) cover(b, label, *first);
      }
    }
  }

  /// Regex routes that a more specific route provably takes every request of (RegexBounds):
  /// one that accepts every path starting with the regex's lead, or, for a regex that matches
  /// a single path, one that accepts that path. Routes equal but for declaration order are left
  /// to regex_ties (ambiguous, not shadowed).
  void regex_covered(const std::string& label, const std::vector<std::uint32_t>& ids) {
    std::vector<std::uint32_t> open_ended; // prefixes and {rest...} templates, in rank order
    for (auto id : ids)
      if (route(id).kind == model::MatchKind::prefix ||
          (templates_[id] && templates_[id]->has_rest()))
        open_ended.push_back(id);
    for (auto b : ids) {
      const Route& B = route(b);
      if (B.kind != model::MatchKind::regex) continue;
      const auto& bounds = bounds_of(b);
      if (!bounds) continue;
      model::MethodSet covering;
      std::optional<std::uint32_t> first;
      for (auto a : bounds->single ? ids : open_ended) {
        if (rank(a) >= rank(b)) break; // both lists are in rank order
        const Route& A = route(a);
        if (keys_[a].same_rank(keys_[b]) || !conditions_subset(A, B)) continue;
        const bool takes = bounds->single ? path_matches(A, bounds->min)
                                          : accepts_every_path_from(a, bounds->lead);
        if (!takes) continue;
        if (!first && A.methods.intersects(B.methods)) first = a;
        covering = covering | (A.methods & B.methods);
      }
      if (first && B.methods.subset_of(covering)) cover(b, label, *first);
    }
  }

  /// Whether route `a` accepts every path that starts with `lead`, whatever follows: a prefix
  /// that `lead` already goes past on a segment boundary, or a {rest...} template whose segments
  /// `lead` completes (what follows only lengthens the non-empty rest).
  bool accepts_every_path_from(std::uint32_t a, const std::string& lead) const {
    const Route& A = route(a);
    switch (A.kind) {
    case model::MatchKind::prefix:
      return lead.starts_with(A.pattern.back() == '/' ? A.pattern : A.pattern + "/");
    case model::MatchKind::template_:
      return templates_[a] && templates_[a]->has_rest() && path_matches(A, lead);
    case model::MatchKind::exact:
    case model::MatchKind::regex:
      return false;
    }
    return false;
  }

  const std::optional<RegexBounds>& bounds_of(std::uint32_t b) {
    auto [it, fresh] = bounds_.try_emplace(b);
    if (fresh) it->second = regex_bounds(*impl_.routes[b].regex);
    return it->second;
  }

  void cover(std::uint32_t b, const std::string& label, std::uint32_t a) {
    auto& c = covered_[b];
    if (c.empty()) c_first_[b] = {label, a};
    c.insert(label);
  }

  void report_shadowed() {
    std::size_t reported = 0;
    for (const auto& [b, labels] : covered_) {
      if (labels.size() != group_count_[b] || duplicates_.count(b)) continue;
      const Route& B = route(b);
      const auto& [label, a] = c_first_[b];
      const Route& A = route(a);
      std::string example;
      const auto method = (A.methods & B.methods).first();
      if (auto ex = example_for(b, label, example_path(b), method)) {
        const Match m = decide(*ex);
        if (ex->complete() && m.matched() && m.route == b)
          continue; // the analysis was wrong: stay quiet
        if (ex->complete() && m.matched() && m.route == a) example = ex->text();
      }
      shadowed_.insert(b);
      if (++reported > cap_) continue;
      auto& d =
          diags_.warning("route.shadowed", loc(B),
                         "route " + text::quote(B.name) + " can never be chosen: route " +
                             text::quote(A.name) + where(A) + " takes every request it accepts" +
                             (example.empty() ? "" : ", e.g. " + example));
      d.with_hint("remove it, or make it more specific than " + text::quote(A.name));
    }
  }

  void ambiguous(std::uint32_t a, std::uint32_t b, const std::string& label, std::string path,
                 model::Method method) {
    if (!ambiguous_pairs_.insert({a, b}).second) return;
    const Route& A = route(a);
    const Route& B = route(b);
    auto ex = example_for(b, label, std::move(path), method, &A);
    if (!ex || !ex->complete()) return;
    // Confirm with the matchers: both routes accept it and the earlier one wins.
    if (!path_matches(B, ex->path()) || !path_matches(A, ex->path())) return;
    const Match m = decide(*ex);
    if (!m.matched() || m.route != a) return;
    if (++ambiguous_reported_ > cap_) {
      ++suppressed_ambiguous_;
      return;
    }
    diags_
        .warning("route.ambiguous", loc(B),
                 "routes " + text::quote(A.name) + " and " + text::quote(B.name) + " both accept " +
                     ex->text() + " with equal precedence; " + text::quote(A.name) +
                     " wins only because it is declared first" + where(A))
        .with_hint("make one of them more specific (a literal segment, a method or a condition)");
  }

  /// Regex routes not proven shadowed whose sample requests (regex_samples, with every method
  /// and host the route accepts) all go to one more specific route. A regex may match paths no
  /// sample tries, so this is reported as likely, under its own code.
  void report_likely_shadowed() {
    std::size_t reported = 0;
    for (std::uint32_t b = 0; b < cfg_.routes.size(); ++b) {
      const Route& B = route(b);
      if (B.kind != model::MatchKind::regex || shadowed_.count(b) || duplicates_.count(b)) continue;
      const auto winner = sampled_winner(b);
      if (!winner) continue;
      if (++reported > cap_) continue;
      const Route& A = route(winner->first);
      diags_
          .warning("route.likely-shadowed", loc(B),
                   "regex route " + text::quote(B.name) +
                       " is likely never chosen: every request " +
                       "tried that it accepts goes to route " + text::quote(A.name) + where(A) +
                       ", e.g. " + winner->second +
                       "; a regex may match paths that were not tried, so check one with `gwctl "
                       "explain`")
          .with_hint("if it is meant for requests " + text::quote(A.name) +
                     " does not take, make it more specific; otherwise remove it");
    }
  }

  /// The one route that took every sample request of regex route `b`, and the first sample;
  /// nullopt when `b` took one, a route tied with `b` did, the samples went to several routes,
  /// or no sample could be made (none accepted, or conditions that cannot be sampled).
  std::optional<std::pair<std::uint32_t, std::string>> sampled_winner(std::uint32_t b) {
    const Route& B = route(b);
    const auto& bounds = bounds_of(b);
    if (!bounds) return std::nullopt;
    const auto paths = regex_samples(*impl_.routes[b].regex, *bounds);
    std::optional<std::pair<std::uint32_t, std::string>> winner;
    const std::vector<std::string> labels =
        B.hosts.empty() ? std::vector<std::string>{"*"} : B.hosts;
    for (const auto& label : labels)
      for (const auto& path : paths)
        for (int mi = 0; mi < model::kMethodCount; ++mi) {
          const auto method = static_cast<model::Method>(mi);
          if (!B.methods.contains(method)) continue;
          auto ex = example_for(b, label, path, method);
          if (!ex || !ex->complete()) return std::nullopt;
          const Match m = decide(*ex);
          if (!m.matched() || m.route == b || keys_[m.route].same_rank(keys_[b]))
            return std::nullopt;
          if (!winner)
            winner.emplace(m.route, ex->text());
          else if (winner->first != m.route)
            return std::nullopt;
        }
    return winner;
  }

  /// Templates of equal rank that can match a common path, found by partitioning on segments.
  void template_ties(const std::string& label, const std::vector<std::uint32_t>& ids) {
    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>,
             std::vector<std::uint32_t>>
        buckets;
    for (auto id : ids) {
      if (route(id).kind != model::MatchKind::template_ || !templates_[id]) continue;
      const auto& k = keys_[id];
      buckets[{k.a, k.b, k.c, k.conditions}].push_back(id);
    }
    for (auto& [_, list] : buckets)
      if (list.size() > 1) partition(label, list, 0);
  }

  void partition(const std::string& label, const std::vector<std::uint32_t>& items,
                 std::size_t seg) {
    if (items.size() < 2) return;
    const std::size_t nseg = templates_[items[0]]->segments().size();
    if (seg == nseg) {
      for (std::size_t i = 0; i < items.size(); ++i)
        for (std::size_t j = i + 1; j < items.size(); ++j)
          tie(label, items[i], items[j]);
      return;
    }
    std::map<std::string, std::vector<std::uint32_t>> lits;
    std::vector<std::uint32_t> wild;
    for (auto id : items) {
      const auto& s = templates_[id]->segments()[seg];
      if (s.literal())
        lits[s.parts[0].text].push_back(id);
      else
        wild.push_back(id);
    }
    std::array<std::string_view, model::kMaxTemplateParams> scratch;
    for (auto& [lit, group] : lits) {
      auto with = group;
      for (auto w : wild)
        if (!lit.empty() && templates_[w]->segments()[seg].match(lit, scratch.data()))
          with.push_back(w);
      partition(label, with, seg + 1);
    }
    partition(label, wild, seg + 1);
  }

  void tie(const std::string& label, std::uint32_t x, std::uint32_t y) {
    const std::uint32_t a = rank(x) < rank(y) ? x : y, b = a == x ? y : x;
    const Route& A = route(a);
    const Route& B = route(b);
    if (templates_[a]->shape() == templates_[b]->shape()) return; // same key: handled by same_key
    if (!A.methods.intersects(B.methods) || contradictory(A.headers, B.headers) ||
        contradictory(A.query, B.query))
      return;
    const auto path = common_path(A, B);
    if (!path) return;
    ambiguous(a, b, label, *path, (A.methods & B.methods).first());
  }

  void regex_ties(const std::string& label, const std::vector<std::uint32_t>& ids) {
    std::map<std::int32_t, std::vector<std::uint32_t>> by_priority;
    for (auto id : ids)
      if (route(id).kind == model::MatchKind::regex) by_priority[route(id).priority].push_back(id);
    for (auto& [_, list] : by_priority) {
      if (list.size() < 2 || list.size() > 200) continue; // pairwise; bounded
      for (std::size_t i = 0; i < list.size(); ++i)
        for (std::size_t j = i + 1; j < list.size(); ++j) {
          const std::uint32_t a = list[i], b = list[j];
          if (route(a).pattern == route(b).pattern) continue; // same key
          if (keys_[a].conditions != keys_[b].conditions) continue;
          const std::string path = example_path(b);
          if (!path.empty() && RE2::FullMatch(path, *impl_.routes[a].regex))
            ambiguous(a, b, label, path, (route(a).methods & route(b).methods).first());
        }
    }
  }

  const RouteTable& table_;
  const RouteTable::Impl& impl_;
  const model::Config& cfg_;
  Diagnostics& diags_;
  std::size_t cap_;
  std::map<std::string, std::vector<std::uint32_t>> groups_;
  std::unordered_map<std::uint32_t, std::size_t> group_count_;
  std::vector<std::optional<model::PathTemplate>> templates_;
  std::vector<model::PrecedenceKey> keys_; // computed once: parsing templates is not free
  std::set<std::uint32_t> duplicates_;
  std::set<std::uint32_t> shadowed_; // reported as route.shadowed
  std::unordered_map<std::uint32_t, std::optional<RegexBounds>> bounds_;
  std::map<std::uint32_t, std::set<std::string>> covered_;
  std::map<std::uint32_t, std::pair<std::string, std::uint32_t>> c_first_;
  std::set<std::pair<std::uint32_t, std::uint32_t>> ambiguous_pairs_;
  std::size_t ambiguous_reported_ = 0, suppressed_ambiguous_ = 0;
};

} // namespace

void analyze(const RouteTable& table, Diagnostics& diags, std::size_t max_per_kind) {
  Analyzer(table, diags, max_per_kind).run();
}

} // namespace gw::router
