#include "gw/spec/toml_reader.hpp"

#include <array>
#include <sstream>
#include <toml++/toml.h>

#include "gw/core/file.hpp"
#include "gw/core/text.hpp"
#include "gw/spec/cases.hpp"

namespace gw::spec {
namespace {

using namespace std::string_view_literals;

constexpr std::array kRootKeys = {"version"sv,  "defaults"sv, "upstreams"sv,
                                  "policies"sv, "attach"sv,   "routes"sv};
constexpr std::array kDefaultsKeys = {"timeout"sv, "per_try_timeout"sv, "connect_timeout"sv,
                                      "retries"sv, "max_body"sv};
constexpr std::array kUpstreamKeys = {"endpoints"sv, "balance"sv, "hash_on"sv, "connect_timeout"sv};
constexpr std::array kEndpointKeys = {"address"sv, "weight"sv};
constexpr std::array kRouteKeys = {
    "name"sv,     "methods"sv,  "hosts"sv,    "path"sv,    "prefix"sv,          "template"sv,
    "regex"sv,    "priority"sv, "upstream"sv, "timeout"sv, "per_try_timeout"sv, "retries"sv,
    "max_body"sv, "policies"sv, "headers"sv,  "query"sv,   "rewrite"sv};
constexpr std::array kMatcherKeys = {"name"sv,     "exact"sv, "prefix"sv,  "suffix"sv,
                                     "contains"sv, "regex"sv, "present"sv, "invert"sv};
constexpr std::array kRewriteKeys = {"path"sv, "prefix"sv, "host"sv};
constexpr std::array kPolicyKeys = {"kind"sv}; // plus kind-specific keys, checked by the kind
constexpr std::array kAttachKeys = {"policies"sv, "hosts"sv, "prefix"sv};

constexpr std::array kCasesRootKeys = {"version"sv, "case"sv};
constexpr std::array kCaseKeys = {"name"sv, "method"sv, "url"sv, "host"sv, "headers"sv, "expect"sv};
constexpr std::array kExpectKeys = {"route"sv,  "upstream"sv, "status"sv, "allow"sv,
                                    "params"sv, "path"sv,     "host"sv};

constexpr std::array kKeyTables = {
    KeyTable{"", kRootKeys},
    KeyTable{"/defaults", kDefaultsKeys},
    KeyTable{"/upstreams/*", kUpstreamKeys},
    KeyTable{"/upstreams/*/endpoints/*", kEndpointKeys},
    KeyTable{"/routes/*", kRouteKeys},
    KeyTable{"/routes/*/headers/*", kMatcherKeys},
    KeyTable{"/routes/*/query/*", kMatcherKeys},
    KeyTable{"/routes/*/rewrite", kRewriteKeys},
    KeyTable{"/policies/*", kPolicyKeys},
    KeyTable{"/attach/*", kAttachKeys},
};

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
  case toml::node_type::string:
    return "a string";
  case toml::node_type::integer:
    return "an integer";
  case toml::node_type::floating_point:
    return "a float";
  case toml::node_type::boolean:
    return "a boolean";
  case toml::node_type::date:
    return "a date";
  case toml::node_type::time:
    return "a time";
  case toml::node_type::date_time:
    return "a date-time";
  case toml::node_type::array:
    return "an array";
  case toml::node_type::table:
    return "a table";
  default:
    return "nothing";
  }
}

/// Per-file reading state: where diagnostics go and how locations are made.
class Reader {
public:
  Reader(const SourceFile& file, Document& doc, Diagnostics& diags)
      : file_(file), doc_(doc), diags_(diags) {}

  void read_root(const toml::table& root);

private:
  SourceLoc loc(const toml::source_region& r) const {
    return SourceLoc{file_.name, r.begin.line, r.begin.column};
  }
  SourceLoc loc(const toml::node& n) const { return loc(n.source()); }

  void type_error(const toml::node& n, std::string_view what, std::string_view expected,
                  const std::string& pointer) {
    diags_
        .error("spec.type", loc(n),
               std::string(what) + " must be " + std::string(expected) + ", found " +
                   std::string(type_name(n)))
        .at_pointer(pointer);
  }

  /// Reports keys of `t` not in `known`; `what` names the table in messages.
  /// Returns the known keys that unknown ones looked like (typos), so a missing-key error for
  /// them can be left out: the typo is the real problem.
  template <std::size_t N>
  std::vector<std::string> check_keys(const toml::table& t,
                                      const std::array<std::string_view, N>& known,
                                      std::string_view what, const std::string& pointer) {
    std::vector<std::string> typos;
    for (auto&& [k, v] : t) {
      bool ok = false;
      for (auto kk : known)
        ok = ok || kk == k.str();
      if (ok) continue;
      auto& d = diags_
                    .error("spec.unknown-key", loc(k.source()),
                           "unknown key " + text::quote(k.str()) + " in " + std::string(what))
                    .at_pointer(pointer + "/" + text::pointer_token(k.str()));
      if (auto s = text::suggest(k.str(), std::span<const std::string_view>(known))) {
        d.with_hint("did you mean \"" + *s + "\"?");
        typos.push_back(*s);
      } else {
        d.with_hint("valid keys: " + join_keys(known));
      }
    }
    return typos;
  }

  template <std::size_t N>
  static std::string join_keys(const std::array<std::string_view, N>& keys) {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
      if (i) out += ", ";
      out += keys[i];
    }
    return out;
  }

  Field<std::string> get_string(const toml::table& t, std::string_view key, std::string_view what,
                                const std::string& pointer) {
    Field<std::string> f;
    const toml::node* n = t.get(key);
    if (!n) return f;
    if (auto s = n->as_string()) {
      f.value = s->get();
      f.loc = loc(*n);
      f.set = true;
    } else {
      f.bad = true;
      type_error(*n, std::string(what) + "." + std::string(key), "a string",
                 pointer + "/" + std::string(key));
    }
    return f;
  }

  Field<std::int64_t> get_int(const toml::table& t, std::string_view key, std::string_view what,
                              const std::string& pointer) {
    Field<std::int64_t> f;
    const toml::node* n = t.get(key);
    if (!n) return f;
    if (auto i = n->as_integer()) {
      f.value = i->get();
      f.loc = loc(*n);
      f.set = true;
    } else {
      f.bad = true;
      type_error(*n, std::string(what) + "." + std::string(key), "an integer",
                 pointer + "/" + std::string(key));
    }
    return f;
  }

  Field<bool> get_bool(const toml::table& t, std::string_view key, std::string_view what,
                       const std::string& pointer) {
    Field<bool> f;
    const toml::node* n = t.get(key);
    if (!n) return f;
    if (auto b = n->as_boolean()) {
      f.value = b->get();
      f.loc = loc(*n);
      f.set = true;
    } else {
      f.bad = true;
      type_error(*n, std::string(what) + "." + std::string(key), "a boolean",
                 pointer + "/" + std::string(key));
    }
    return f;
  }

  /// A size: a string with a unit ("10MiB") or a plain integer number of bytes.
  Field<std::string> get_size(const toml::table& t, std::string_view key, std::string_view what,
                              const std::string& pointer) {
    Field<std::string> f;
    const toml::node* n = t.get(key);
    if (!n) return f;
    if (auto s = n->as_string()) {
      f.value = s->get();
    } else if (auto i = n->as_integer()) {
      f.value = std::to_string(i->get());
    } else {
      f.bad = true;
      type_error(*n, std::string(what) + "." + std::string(key),
                 "a size (a string such as \"10MiB\" or an integer)",
                 pointer + "/" + std::string(key));
      return f;
    }
    f.loc = loc(*n);
    f.set = true;
    return f;
  }

  Field<StringList> get_string_list(const toml::table& t, std::string_view key,
                                    std::string_view what, const std::string& pointer) {
    Field<StringList> f;
    const toml::node* n = t.get(key);
    if (!n) return f;
    const std::string p = pointer + "/" + std::string(key);
    const auto* arr = n->as_array();
    if (!arr) {
      f.bad = true;
      type_error(*n, std::string(what) + "." + std::string(key), "an array of strings", p);
      return f;
    }
    f.loc = loc(*n);
    f.set = true;
    std::size_t i = 0;
    for (const auto& el : *arr) {
      if (auto s = el.as_string()) {
        f.value.push_back(Field<std::string>{s->get(), loc(el), true});
      } else {
        type_error(el, std::string(what) + "." + std::string(key) + " elements", "strings",
                   p + "/" + std::to_string(i));
      }
      ++i;
    }
    return f;
  }

  void read_defaults(const toml::node& n);

public:
  std::vector<CaseSpec> read_cases_root(const toml::table& root);

private:
  std::vector<std::pair<std::string, Field<std::string>>>
  string_map(const toml::node& n, const std::string& what, const std::string& pointer);
  void read_upstreams(const toml::node& n);
  void read_upstream(std::string name, const toml::node& n);
  void read_policies(const toml::node& n);
  void read_attach(const toml::node& n);
  void read_routes(const toml::node& n);
  void read_route(const toml::table& t, std::size_t index);
  Field<std::vector<MatcherSpec>> read_matchers(const toml::table& route, std::string_view key,
                                                const std::string& pointer);
  static nlohmann::json to_json(const toml::node& n, const std::string& pointer, const Reader& self,
                                std::map<std::string, SourceLoc>& locs);

  const SourceFile& file_;
  Document& doc_;
  Diagnostics& diags_;
};

void Reader::read_root(const toml::table& root) {
  // A route test-case file given as a spec (`validate specs/*.toml` with cases beside the
  // specs): one error that says what the file is, rather than one per key it lacks or has.
  if (const auto* c = root.get("case"); c && !root.get("version") && !root.get("routes")) {
    diags_
        .error("spec.cases-file", loc(*c),
               "this is a file of route test cases ([[case]]), not a spec")
        .with_hint("test cases run with `gwctl test SPEC " + file_.name +
                   "`; leave them out of the specs you validate or compile");
    return;
  }
  check_keys(root, kRootKeys, "the top level", "");

  const toml::node* v = root.get("version");
  if (!v) {
    diags_.error("spec.missing-version", SourceLoc{file_.name, 1, 1}, "missing `version = 1`")
        .with_hint("every spec file starts with `version = 1`");
  } else if (auto i = v->as_integer()) {
    if (i->get() != kFormatVersion)
      diags_
          .error("spec.unsupported-version", loc(*v),
                 "format version " + std::to_string(i->get()) +
                     " is not supported; this gwctl reads version 1")
          .at_pointer("/version");
  } else {
    type_error(*v, "version", "the integer 1", "/version");
  }

  if (auto* d = root.get("defaults")) read_defaults(*d);
  if (auto* u = root.get("upstreams")) read_upstreams(*u);
  if (auto* p = root.get("policies")) read_policies(*p);
  if (auto* a = root.get("attach")) read_attach(*a);
  if (auto* r = root.get("routes")) read_routes(*r);
}

void Reader::read_defaults(const toml::node& n) {
  const auto* t = n.as_table();
  if (!t) return type_error(n, "defaults", "a table", "/defaults");
  check_keys(*t, kDefaultsKeys, "[defaults]", "/defaults");
  // Defaults are global; a second file may add keys but not set one twice.
  auto merge = [&](auto& into, auto field, std::string_view key) {
    if (!field.set) return;
    if (into.set) {
      diags_
          .error("spec.duplicate-default", field.loc,
                 "defaults." + std::string(key) + " is already set at " +
                     std::string(into.loc.file) + ":" + std::to_string(into.loc.line))
          .at_pointer("/defaults/" + std::string(key));
      return;
    }
    into = std::move(field);
  };
  auto& d = doc_.defaults;
  merge(d.timeout, get_string(*t, "timeout", "defaults", "/defaults"), "timeout");
  merge(d.per_try_timeout, get_string(*t, "per_try_timeout", "defaults", "/defaults"),
        "per_try_timeout");
  merge(d.connect_timeout, get_string(*t, "connect_timeout", "defaults", "/defaults"),
        "connect_timeout");
  merge(d.retries, get_int(*t, "retries", "defaults", "/defaults"), "retries");
  merge(d.max_body, get_size(*t, "max_body", "defaults", "/defaults"), "max_body");
}

void Reader::read_upstreams(const toml::node& n) {
  const auto* t = n.as_table();
  if (!t) return type_error(n, "upstreams", "a table of named upstreams", "/upstreams");
  for (auto&& [k, v] : *t)
    read_upstream(std::string(k.str()), v);
}

void Reader::read_upstream(std::string name, const toml::node& n) {
  const std::string pointer = "/upstreams/" + text::pointer_token(name);
  const std::string what = "upstream " + text::quote(name);
  const auto* t = n.as_table();
  if (!t) return type_error(n, what, "a table", pointer);
  check_keys(*t, kUpstreamKeys, what, pointer);

  UpstreamSpec u;
  u.name = std::move(name);
  u.loc = loc(*t);
  u.balance = get_string(*t, "balance", what, pointer);
  u.hash_on = get_string(*t, "hash_on", what, pointer);
  u.connect_timeout = get_string(*t, "connect_timeout", what, pointer);

  if (const toml::node* e = t->get("endpoints")) {
    const auto* arr = e->as_array();
    if (!arr) {
      u.endpoints.bad = true;
      type_error(*e, what + ".endpoints", "an array", pointer + "/endpoints");
    } else {
      u.endpoints.set = true;
      u.endpoints.loc = loc(*e);
      std::size_t i = 0;
      for (const auto& el : *arr) {
        const std::string ep = pointer + "/endpoints/" + std::to_string(i++);
        EndpointSpec spec;
        spec.loc = loc(el);
        if (auto s = el.as_string()) {
          spec.address = Field<std::string>{s->get(), loc(el), true};
        } else if (auto et = el.as_table()) {
          check_keys(*et, kEndpointKeys, "an endpoint of " + what, ep);
          spec.address = get_string(*et, "address", "endpoint", ep);
          spec.weight = get_int(*et, "weight", "endpoint", ep);
          if (!spec.address.set && !et->get("address"))
            diags_.error("spec.missing-key", loc(el), "endpoint of " + what + " has no address")
                .at_pointer(ep);
        } else {
          type_error(el, what + ".endpoints elements",
                     "\"host:port\" strings or { address = \"host:port\", weight = N } tables", ep);
          continue;
        }
        u.endpoints.value.push_back(std::move(spec));
      }
    }
  }
  doc_.upstreams.push_back(std::move(u));
}

nlohmann::json Reader::to_json(const toml::node& n, const std::string& pointer, const Reader& self,
                               std::map<std::string, SourceLoc>& locs) {
  locs[pointer] = self.loc(n);
  switch (n.type()) {
  case toml::node_type::string:
    return n.as_string()->get();
  case toml::node_type::integer:
    return n.as_integer()->get();
  case toml::node_type::floating_point:
    return n.as_floating_point()->get();
  case toml::node_type::boolean:
    return n.as_boolean()->get();
  case toml::node_type::array: {
    auto out = nlohmann::json::array();
    std::size_t i = 0;
    for (const auto& el : *n.as_array())
      out.push_back(to_json(el, pointer + "/" + std::to_string(i++), self, locs));
    return out;
  }
  case toml::node_type::table: {
    auto out = nlohmann::json::object();
    for (auto&& [k, v] : *n.as_table())
      out[std::string(k.str())] =
          to_json(v, pointer + "/" + text::pointer_token(k.str()), self, locs);
    return out;
  }
  default: {
    // Dates and times: kept as their TOML text.
    std::ostringstream os;
    if (auto d = n.as_date())
      os << d->get();
    else if (auto t = n.as_time())
      os << t->get();
    else if (auto dt = n.as_date_time())
      os << dt->get();
    return os.str();
  }
  }
}

void Reader::read_policies(const toml::node& n) {
  const auto* t = n.as_table();
  if (!t) return type_error(n, "policies", "a table of named policies", "/policies");
  for (auto&& [k, v] : *t) {
    const std::string name(k.str());
    const std::string pointer = "/policies/" + text::pointer_token(name);
    const auto* pt = v.as_table();
    if (!pt) {
      type_error(v, "policy " + text::quote(name), "a table", pointer);
      continue;
    }
    PolicySpec p;
    p.name = name;
    p.loc = loc(*pt);
    p.kind = get_string(*pt, "kind", "policy " + text::quote(name), pointer);
    for (auto&& [ck, cv] : *pt) {
      if (ck.str() == "kind") continue;
      const std::string cp = "/" + text::pointer_token(ck.str());
      p.config[std::string(ck.str())] = to_json(cv, cp, *this, p.locs);
    }
    doc_.policies.push_back(std::move(p));
  }
}

void Reader::read_attach(const toml::node& n) {
  const auto* arr = n.as_array();
  if (!arr)
    return type_error(n, "attach", "an array of tables (write each as [[attach]])", "/attach");
  std::size_t i = 0;
  for (const auto& el : *arr) {
    const std::string pointer = "/attach/" + std::to_string(i++);
    const auto* t = el.as_table();
    if (!t) {
      type_error(el, "each attach", "a table", pointer);
      continue;
    }
    check_keys(*t, kAttachKeys, "[[attach]]", pointer);
    AttachSpec a;
    a.loc = loc(*t);
    a.policies = get_string_list(*t, "policies", "[[attach]]", pointer);
    a.hosts = get_string_list(*t, "hosts", "[[attach]]", pointer);
    a.prefix = get_string(*t, "prefix", "[[attach]]", pointer);
    doc_.attach.push_back(std::move(a));
  }
}

void Reader::read_routes(const toml::node& n) {
  const auto* arr = n.as_array();
  if (!arr) {
    type_error(n, "routes", "an array of tables (write each route as [[routes]])", "/routes");
    return;
  }
  doc_.routes.reserve(doc_.routes.size() + arr->size());
  std::size_t i = 0;
  for (const auto& el : *arr) {
    if (const auto* t = el.as_table()) {
      read_route(*t, i);
    } else {
      type_error(el, "each route", "a table", "/routes/" + std::to_string(i));
    }
    ++i;
  }
}

Field<std::vector<MatcherSpec>>
Reader::read_matchers(const toml::table& route, std::string_view key, const std::string& pointer) {
  Field<std::vector<MatcherSpec>> f;
  const toml::node* n = route.get(key);
  if (!n) return f;
  const std::string p = pointer + "/" + std::string(key);
  const auto* arr = n->as_array();
  if (!arr) {
    type_error(*n, std::string(key), "an array of matcher tables", p);
    return f;
  }
  f.set = true;
  f.loc = loc(*n);
  std::size_t i = 0;
  for (const auto& el : *arr) {
    const std::string mp = p + "/" + std::to_string(i++);
    const auto* t = el.as_table();
    if (!t) {
      type_error(el, std::string(key) + " elements",
                 "tables such as { name = \"x\", exact = \"1\" }", mp);
      continue;
    }
    const std::string what = std::string(key) == "headers" ? "a header matcher" : "a query matcher";
    check_keys(*t, kMatcherKeys, what, mp);
    MatcherSpec m;
    m.loc = loc(el);
    m.name = get_string(*t, "name", what, mp);
    m.exact = get_string(*t, "exact", what, mp);
    m.prefix = get_string(*t, "prefix", what, mp);
    m.suffix = get_string(*t, "suffix", what, mp);
    m.contains = get_string(*t, "contains", what, mp);
    m.regex = get_string(*t, "regex", what, mp);
    m.present = get_bool(*t, "present", what, mp);
    m.invert = get_bool(*t, "invert", what, mp);
    f.value.push_back(std::move(m));
  }
  return f;
}

void Reader::read_route(const toml::table& t, std::size_t index) {
  const std::string pointer = "/routes/" + std::to_string(index);
  RouteSpec r;
  r.loc = loc(t);
  r.name = get_string(t, "name", "route", pointer);
  const std::string what =
      r.name.set ? "route " + text::quote(r.name.value) : "route #" + std::to_string(index + 1);
  r.misspelled = check_keys(t, kRouteKeys, what, pointer);

  r.methods = get_string_list(t, "methods", what, pointer);
  r.hosts = get_string_list(t, "hosts", what, pointer);
  r.path = get_string(t, "path", what, pointer);
  r.prefix = get_string(t, "prefix", what, pointer);
  r.template_ = get_string(t, "template", what, pointer);
  r.regex = get_string(t, "regex", what, pointer);
  r.priority = get_int(t, "priority", what, pointer);
  r.upstream = get_string(t, "upstream", what, pointer);
  r.timeout = get_string(t, "timeout", what, pointer);
  r.per_try_timeout = get_string(t, "per_try_timeout", what, pointer);
  r.retries = get_int(t, "retries", what, pointer);
  r.max_body = get_size(t, "max_body", what, pointer);
  r.policies = get_string_list(t, "policies", what, pointer);
  r.headers = read_matchers(t, "headers", pointer);
  r.query = read_matchers(t, "query", pointer);

  if (const toml::node* rw = t.get("rewrite")) {
    const std::string rp = pointer + "/rewrite";
    if (const auto* rt = rw->as_table()) {
      check_keys(*rt, kRewriteKeys, what + ".rewrite", rp);
      r.rewrite.set = true;
      r.rewrite.loc = loc(*rw);
      r.rewrite.path = get_string(*rt, "path", what + ".rewrite", rp);
      r.rewrite.prefix = get_string(*rt, "prefix", what + ".rewrite", rp);
      r.rewrite.host = get_string(*rt, "host", what + ".rewrite", rp);
    } else {
      type_error(*rw, what + ".rewrite", "a table", rp);
    }
  }
  doc_.routes.push_back(std::move(r));
}

std::vector<std::pair<std::string, Field<std::string>>>
Reader::string_map(const toml::node& n, const std::string& what, const std::string& pointer) {
  std::vector<std::pair<std::string, Field<std::string>>> out;
  const auto* t = n.as_table();
  if (!t) {
    type_error(n, what, "a table of strings", pointer);
    return out;
  }
  for (auto&& [k, v] : *t) {
    if (auto s = v.as_string())
      out.emplace_back(std::string(k.str()), Field<std::string>{s->get(), loc(v), true});
    else
      type_error(v, what + "." + std::string(k.str()), "a string",
                 pointer + "/" + text::pointer_token(k.str()));
  }
  return out;
}

std::vector<CaseSpec> Reader::read_cases_root(const toml::table& root) {
  std::vector<CaseSpec> out;
  check_keys(root, kCasesRootKeys, "a cases file", "");
  const toml::node* cases = root.get("case");
  if (!cases) {
    diags_.error("cases.none", SourceLoc{file_.name, 1, 1}, "no [[case]] entries");
    return out;
  }
  const auto* arr = cases->as_array();
  if (!arr) {
    type_error(*cases, "case", "an array of tables (write each as [[case]])", "/case");
    return out;
  }
  std::size_t i = 0;
  for (const auto& el : *arr) {
    const std::string p = "/case/" + std::to_string(i++);
    const auto* t = el.as_table();
    if (!t) {
      type_error(el, "each case", "a table", p);
      continue;
    }
    CaseSpec c;
    c.loc = loc(el);
    c.name = get_string(*t, "name", "case", p);
    const std::string what = c.name ? "case " + text::quote(*c.name) : "case #" + std::to_string(i);
    check_keys(*t, kCaseKeys, what, p);
    c.method = get_string(*t, "method", what, p);
    c.url = get_string(*t, "url", what, p);
    c.host = get_string(*t, "host", what, p);
    if (const auto* h = t->get("headers"))
      c.headers = string_map(*h, what + ".headers", p + "/headers");
    if (!c.url) diags_.error("spec.missing-key", c.loc, what + " has no url").at_pointer(p);
    const toml::node* e = t->get("expect");
    if (!e) {
      diags_.error("spec.missing-key", c.loc, what + " has no expect table").at_pointer(p);
    } else if (const auto* et = e->as_table()) {
      const std::string ep = p + "/expect";
      c.expect_loc = loc(*e);
      check_keys(*et, kExpectKeys, what + ".expect", ep);
      c.route = get_string(*et, "route", what + ".expect", ep);
      c.upstream = get_string(*et, "upstream", what + ".expect", ep);
      c.status = get_int(*et, "status", what + ".expect", ep);
      c.allow = get_string_list(*et, "allow", what + ".expect", ep);
      c.path = get_string(*et, "path", what + ".expect", ep);
      c.rewritten_host = get_string(*et, "host", what + ".expect", ep);
      if (const auto* pr = et->get("params")) {
        c.params.set = true;
        c.params.loc = loc(*pr);
        c.params.value = string_map(*pr, what + ".expect.params", ep + "/params");
      }
      if (c.status && *c.status != 200 && *c.status != 404 && *c.status != 405)
        diags_.error("value.range", c.status.loc, "expect.status must be 200, 404 or 405");
      if (c.status && *c.status != 200 && (c.route || c.upstream || c.params.set))
        diags_.error("cases.conflict", c.expect_loc,
                     what + " expects status " + std::to_string(*c.status) + " and a route");
    } else {
      type_error(*e, what + ".expect", "a table", p + "/expect");
    }
    out.push_back(std::move(c));
  }
  return out;
}

} // namespace

std::vector<CaseSpec> read_cases(std::string name, std::string text, SourceSet& sources,
                                 Diagnostics& diags) {
  const SourceFile& file = sources.add(std::move(name), std::move(text));
  toml::table root;
  try {
    root = toml::parse(std::string_view(file.text), std::string(file.name));
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    diags.error("spec.syntax", SourceLoc{file.name, src.begin.line, src.begin.column},
                std::string(e.description()));
    return {};
  }
  Document unused;
  return Reader(file, unused, diags).read_cases_root(root);
}

std::vector<CaseSpec> read_cases_file(const std::string& path, SourceSet& sources,
                                      Diagnostics& diags) {
  auto text = file::read_all(path, kMaxSpecBytes);
  if (!text) {
    diags.error("input.unreadable", SourceLoc{path, 0, 0}, text.error().message);
    return {};
  }
  return read_cases(path, std::move(*text), sources, diags);
}

void read_toml(std::string name, std::string text, SourceSet& sources, Document& doc,
               Diagnostics& diags) {
  const SourceFile& file = sources.add(std::move(name), std::move(text));
  doc.files.push_back(&file);
  toml::table root;
  try {
    root = toml::parse(std::string_view(file.text), std::string(file.name));
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    diags.error("spec.syntax", SourceLoc{file.name, src.begin.line, src.begin.column},
                std::string(e.description()));
    return;
  }
  Reader(file, doc, diags).read_root(root);
}

void read_toml_file(const std::string& path, SourceSet& sources, Document& doc,
                    Diagnostics& diags) {
  auto text = file::read_all(path, kMaxSpecBytes);
  if (!text) {
    const char* code = text.error().code == errc::too_large ? "spec.too-large" : "input.unreadable";
    diags.error(code, SourceLoc{path, 0, 0}, text.error().message);
    return;
  }
  read_toml(path, std::move(*text), sources, doc, diags);
}

std::span<const KeyTable> toml_key_tables() {
  return kKeyTables;
}

} // namespace gw::spec
