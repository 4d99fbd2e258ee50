// headers: request, response and query edits. Every headers policy of a route is composed into
// its RouteFacts::transform once per generation; the proxy applies that, so the filter itself
// has nothing to do per request.
#include <algorithm>

#include "gw/policy/kinds.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "headers";

constexpr std::string_view kSchema = R"json({
  "request": {
    "description": "Request header operations { set, add, remove, rename }.",
    "type": "object"
  },
  "response": {
    "description": "Response header operations { set, add, remove, rename }.",
    "type": "object"
  },
  "query": {
    "description": "Query parameter operations { set, remove }.",
    "type": "object"
  }
})json";

HeaderOps read_ops(Fields& f, std::string_view key) {
  HeaderOps ops;
  const json* v = f.get(key);
  if (!v) return ops;
  if (!v->is_object()) {
    f.error(key,
            std::string(key) +
                " must be a table: { set = {...}, add = {...}, remove = [...], rename = {...} }");
    return ops;
  }
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string label = std::string(key) + "." + it.key();
    if (it.key() == "remove") {
      if (!it.value().is_array() || !std::all_of(it.value().begin(), it.value().end(),
                                                 [](const json& e) { return e.is_string(); })) {
        f.error(key, label + " must be an array of header names");
        continue;
      }
      for (const auto& n : it.value()) {
        if (!text::is_token(n.get<std::string>()))
          f.error(key, text::quote(n.get<std::string>()) + " is not a header name");
        ops.remove.push_back(text::lower(n.get<std::string>()));
      }
    } else if (it.key() == "set" || it.key() == "add" || it.key() == "rename") {
      auto t = f.string_table(key, &it.value(), label);
      if (!t) continue;
      auto& dst = it.key() == "set" ? ops.set : it.key() == "add" ? ops.add : ops.rename;
      for (auto& [name, value] : *t) {
        if (!text::is_token(name)) f.error(key, text::quote(name) + " is not a header name");
        if (it.key() == "rename" ? !text::is_token(value) : !valid_header_value(value))
          f.error(key, label + "." + name + ": " + text::quote(value) + " is not a valid " +
                           (it.key() == "rename" ? "header name" : "header value"));
        dst.emplace_back(text::lower(name), it.key() == "rename" ? text::lower(value) : value);
      }
    } else {
      f.error(key, "unknown operation " + text::quote(label) + " (set, add, remove, rename)");
    }
  }
  // Hop-by-hop and framing headers belong to the proxy, not to transforms.
  auto forbidden = [](const std::string& n) { return managed_by_proxy(n); };
  for (const auto* list : {&ops.set, &ops.add, &ops.rename})
    for (const auto& [n, to] : *list)
      if (forbidden(n) || (list == &ops.rename && forbidden(to)))
        f.error(key, text::quote(forbidden(n) ? n : to) +
                         " is managed by the proxy and cannot be changed here");
  for (const auto& n : ops.remove)
    if (forbidden(n))
      f.error(key, text::quote(n) + " is managed by the proxy and cannot be removed here");
  return ops;
}

Headers read(Fields& f, json*) {
  Headers h;
  h.request = read_ops(f, "request");
  h.response = read_ops(f, "response");
  if (const json* q = f.get("query")) {
    if (!q->is_object()) {
      f.error("query", "query must be a table: { set = {...}, remove = [...] }");
    } else {
      for (auto it = q->begin(); it != q->end(); ++it) {
        if (it.key() == "set") {
          if (auto t = f.string_table("query", &it.value(), "query.set")) h.query_set = *t;
        } else if (it.key() == "remove" && it.value().is_array() &&
                   std::all_of(it.value().begin(), it.value().end(),
                               [](const json& e) { return e.is_string(); })) {
          h.query_remove = it.value().get<std::vector<std::string>>();
        } else {
          f.error("query", "query." + it.key() +
                               ": expected set = { name = \"value\" } or remove = [\"name\"]");
        }
      }
    }
  }
  if (h.request.empty() && h.response.empty() && h.query_set.empty() && h.query_remove.empty() &&
      f.ok())
    f.error("", "changes nothing: give request, response or query");
  return h;
}

/// Appends `b`'s operations to `a` as if `b` ran after `a`: a later remove or set of a name
/// replaces an earlier set or add of it.
void append_ops(HeaderOps& a, const HeaderOps& b) {
  auto undo = [&](const std::string& n) {
    std::erase_if(a.set, [&](const auto& kv) { return kv.first == n; });
    std::erase_if(a.add, [&](const auto& kv) { return kv.first == n; });
  };
  for (const auto& n : b.remove) {
    undo(n);
    a.remove.push_back(n);
  }
  for (const auto& kv : b.set) {
    undo(kv.first);
    a.set.push_back(kv);
  }
  a.add.insert(a.add.end(), b.add.begin(), b.add.end());
  a.rename.insert(a.rename.end(), b.rename.begin(), b.rename.end());
}

/// Adds a headers policy after those already in `t`.
void add_transform(Transform& t, const Headers& h) {
  append_ops(t.request, h.request);
  append_ops(t.response, h.response);
  HeaderOps query;
  query.set = h.query_set;
  query.remove = h.query_remove;
  append_ops(t.query, query);
}

class HeadersFilter final : public Filter {
public:
  explicit HeadersFilter(Headers h) : h_(std::move(h)) {}
  /// A route may have several (e.g. from [[attach]]): each adds after those before it.
  void contribute(RouteFacts& facts) const override { add_transform(facts.transform, h_); }

private:
  Headers h_;
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<Headers>(kName, &read, settings, ctx, diags);
}

} // namespace

template <>
Result<Headers> parse<Headers>(std::string_view canonical, std::string_view policy) {
  return parse_with<Headers>(kName, &read, canonical, policy);
}

constexpr KindInfo kHeadersKind{
    .name = kName,
    .phase = Phase::transform,
    .authenticates = false,
    .composite = false,
    .schema = kSchema,
    .compile = &compile,
    .build = &build_from<Headers, HeadersFilter>,
    .needs_identity = nullptr,
    .references = nullptr,
};

} // namespace gw::policy
