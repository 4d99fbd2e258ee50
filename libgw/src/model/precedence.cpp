#include "gw/model/precedence.hpp"

#include <algorithm>
#include <numeric>
#include <optional>

#include "gw/model/path_template.hpp"

namespace gw::model {

PrecedenceKey precedence_key(const Route& r, const PathTemplate* parsed) {
  PrecedenceKey k;
  k.kind = static_cast<std::uint8_t>(r.kind);
  switch (r.kind) {
  case MatchKind::exact:
    break;
  case MatchKind::template_: {
    std::optional<PathTemplate> own;
    if (!parsed) {
      if (auto t = PathTemplate::parse(r.pattern)) own = std::move(*t);
      parsed = own ? &*own : nullptr;
    }
    if (parsed) {
      k.a = -static_cast<std::int64_t>(parsed->literal_chars());
      k.b = -static_cast<std::int64_t>(parsed->segments().size());
      k.c = parsed->has_rest() ? 1 : 0;
    }
    break;
  }
  case MatchKind::prefix:
    k.a = -static_cast<std::int64_t>(r.pattern.size());
    break;
  case MatchKind::regex:
    k.a = -static_cast<std::int64_t>(r.priority);
    break;
  }
  k.conditions = -static_cast<std::int64_t>(r.headers.size() + r.query.size());
  k.decl = r.decl;
  return k;
}

int host_tier(const Route& r) {
  if (r.hosts.empty()) return 2;
  for (const auto& h : r.hosts)
    if (h.empty() || h[0] != '*') return 0;
  return 1;
}

void sort_by_precedence(std::vector<Route>& routes, const std::vector<PrecedenceKey>& given) {
  std::vector<std::pair<std::pair<int, PrecedenceKey>, std::size_t>> keys;
  keys.reserve(routes.size());
  for (std::size_t i = 0; i < routes.size(); ++i)
    keys.push_back(
        {{host_tier(routes[i]), i < given.size() ? given[i] : precedence_key(routes[i])}, i});
  std::sort(keys.begin(), keys.end(), [](const auto& x, const auto& y) {
    if (x.first.first != y.first.first) return x.first.first < y.first.first;
    return x.first.second < y.first.second;
  });
  std::vector<Route> out;
  out.reserve(routes.size());
  for (const auto& k : keys)
    out.push_back(std::move(routes[k.second]));
  routes = std::move(out);
}

std::string describe_specificity(const Route& r) {
  const auto k = precedence_key(r);
  std::string s(to_string(r.kind));
  switch (r.kind) {
  case MatchKind::exact:
    break;
  case MatchKind::template_:
    s += ", " + std::to_string(-k.a) + " literal chars, " + std::to_string(-k.b) + " segments";
    if (k.c) s += " + rest";
    break;
  case MatchKind::prefix:
    s += ", length " + std::to_string(-k.a);
    break;
  case MatchKind::regex:
    s += ", priority " + std::to_string(r.priority);
    break;
  }
  if (k.conditions)
    s += ", " + std::to_string(-k.conditions) + (k.conditions == -1 ? " condition" : " conditions");
  return s;
}

} // namespace gw::model
