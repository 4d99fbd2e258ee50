#include "gw/model/validate.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <re2/re2.h>
#include <set>
#include <unordered_map>
#include <variant>

#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/model/path_template.hpp"
#include "gw/model/precedence.hpp"
#include "gw/policy/kinds.hpp"
#include "gw/uri/normalize.hpp"

namespace gw::model {
namespace {

using namespace std::string_view_literals;

constexpr std::array kBalanceNames = {"round_robin"sv, "least_request"sv, "hash"sv, "random"sv};

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':' || c == '/';
  });
}

bool compiles_as_regex(const std::string& pattern, std::string& error) {
  RE2::Options opt;
  opt.set_log_errors(false);
  RE2 re(pattern, opt);
  if (!re.ok()) {
    error = re.error();
    return false;
  }
  return true;
}

struct Validator {
  const spec::Document& doc;
  Diagnostics& diags;
  Config cfg;
  std::unordered_map<const char*, std::uint32_t> file_index;
  std::map<std::string, std::uint32_t> upstream_index; // filled after sorting
  std::map<std::string, std::uint32_t> policy_index;
  std::vector<std::string> upstream_names, policy_names;
  // By index into cfg.policies: its kind's row, and its canonical settings for the rows' checks
  // (needs_identity, references); null JSON for kinds without them.
  std::vector<const policy::KindInfo*> policy_kinds;
  std::vector<nlohmann::json> policy_settings;

  // Effective defaults.
  std::uint32_t def_timeout = kDefaultTimeoutMs, def_per_try = 0;
  std::uint32_t def_connect = kDefaultConnectTimeoutMs, def_retries = kDefaultRetries;
  std::uint64_t def_max_body = 0;

  SourceRef ref(const SourceLoc& loc) const {
    SourceRef r;
    auto it = file_index.find(loc.file.data());
    if (it != file_index.end()) r.file = it->second;
    r.line = loc.line;
    r.col = loc.col;
    return r;
  }

  std::optional<std::uint32_t> duration(const spec::Field<std::string>& f, std::string_view what,
                                        bool allow_zero = false) {
    if (!f) return std::nullopt;
    auto d = units::parse_duration(*f);
    if (!d) {
      diags
          .error("value.duration", f.loc,
                 std::string(what) + ": " + text::quote(*f) +
                     " is not a duration: " + d.error().message)
          .with_hint("write durations like \"250ms\", \"5s\", \"1m30s\"");
      return std::nullopt;
    }
    if (d->count() == 0 && !allow_zero) {
      diags.error("value.range", f.loc, std::string(what) + " must be greater than zero");
      return std::nullopt;
    }
    return static_cast<std::uint32_t>(d->count());
  }

  std::optional<std::uint64_t> size(const spec::Field<std::string>& f, std::string_view what) {
    if (!f) return std::nullopt;
    auto s = units::parse_size(*f);
    if (!s) {
      diags
          .error("value.size", f.loc,
                 std::string(what) + ": " + text::quote(*f) +
                     " is not a size: " + s.error().message)
          .with_hint("write sizes like \"64KiB\", \"10MiB\" or a number of bytes");
      return std::nullopt;
    }
    return *s;
  }

  std::optional<std::uint32_t> retries(const spec::Field<std::int64_t>& f, std::string_view what) {
    if (!f) return std::nullopt;
    if (*f < 0 || *f > static_cast<std::int64_t>(kMaxRetries)) {
      diags.error("value.range", f.loc,
                  std::string(what) + " must be between 0 and " + std::to_string(kMaxRetries) +
                      ", found " + std::to_string(*f));
      return std::nullopt;
    }
    return static_cast<std::uint32_t>(*f);
  }

  void defaults() {
    const auto& d = doc.defaults;
    if (auto v = duration(d.timeout, "defaults.timeout")) def_timeout = *v;
    if (auto v = duration(d.per_try_timeout, "defaults.per_try_timeout")) def_per_try = *v;
    if (auto v = duration(d.connect_timeout, "defaults.connect_timeout")) def_connect = *v;
    if (auto v = retries(d.retries, "defaults.retries")) def_retries = *v;
    if (auto v = size(d.max_body, "defaults.max_body")) def_max_body = *v;
  }

  std::optional<Endpoint> endpoint(const spec::EndpointSpec& e, const std::string& upstream) {
    if (!e.address) return std::nullopt; // reported by the reader
    const std::string& a = *e.address;
    Endpoint ep;
    std::string_view host, port;
    if (!a.empty() && a[0] == '[') {
      const auto close = a.find(']');
      if (close == std::string::npos || close + 1 >= a.size() || a[close + 1] != ':') {
        diags.error("value.address", e.address.loc,
                    "endpoint " + text::quote(a) + " of upstream " + text::quote(upstream) +
                        " is not \"[ipv6]:port\"");
        return std::nullopt;
      }
      host = std::string_view(a).substr(1, close - 1);
      port = std::string_view(a).substr(close + 2);
    } else {
      const auto colon = a.rfind(':');
      if (colon == std::string::npos || a.find(':') != colon) {
        diags
            .error("value.address", e.address.loc,
                   "endpoint " + text::quote(a) + " of upstream " + text::quote(upstream) +
                       (colon == std::string::npos ? " has no port" : " is not \"host:port\""))
            .with_hint(colon == std::string::npos ? "write \"" + a + ":80\""
                                                  : "bracket IPv6 addresses: \"[::1]:8080\"");
        return std::nullopt;
      }
      host = std::string_view(a).substr(0, colon);
      port = std::string_view(a).substr(colon + 1);
    }
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      diags.error("value.address", e.address.loc,
                  "endpoint " + text::quote(a) + ": port must be a number from 1 to 65535");
      return std::nullopt;
    }
    if (host.empty() || (host.find(':') == std::string_view::npos && !check_host(host).empty()) ||
        host.find('*') != std::string_view::npos) {
      diags.error("value.address", e.address.loc,
                  "endpoint " + text::quote(a) + ": " + text::quote(host) +
                      " is not an IP address or host name");
      return std::nullopt;
    }
    ep.host = text::lower(host);
    ep.port = static_cast<std::uint16_t>(p);
    if (e.weight) {
      if (*e.weight < 1 || *e.weight > 10000) {
        diags.error("value.range", e.weight.loc,
                    "endpoint weight must be between 1 and 10000, found " +
                        std::to_string(*e.weight));
        return std::nullopt;
      }
      ep.weight = static_cast<std::uint32_t>(*e.weight);
    }
    return ep;
  }

  void upstreams() {
    std::map<std::string, const spec::UpstreamSpec*> seen;
    for (const auto& u : doc.upstreams) {
      if (!valid_name(u.name)) {
        diags.error("name.invalid", u.loc,
                    "upstream name " + text::quote(u.name) +
                        " may only contain letters, digits and _ - . : /");
        continue;
      }
      if (auto [it, fresh] = seen.emplace(u.name, &u); !fresh) {
        diags.error("name.duplicate", u.loc,
                    "upstream " + text::quote(u.name) + " is already defined at " +
                        std::string(it->second->loc.file) + ":" +
                        std::to_string(it->second->loc.line));
        continue;
      }
      Upstream out;
      out.name = u.name;
      out.src = ref(u.loc);
      bool ok = true;
      if (u.endpoints.bad) {
        ok = false; // reported by the reader
      } else if (!u.endpoints || u.endpoints.value.empty()) {
        diags
            .error("upstream.no-endpoints", u.endpoints ? u.endpoints.loc : u.loc,
                   "upstream " + text::quote(u.name) + " has no endpoints")
            .with_hint("endpoints = [\"127.0.0.1:8080\"]");
        ok = false;
      } else {
        std::set<std::string> addrs;
        for (const auto& e : u.endpoints.value) {
          auto ep = endpoint(e, u.name);
          if (!ep) {
            ok = false;
            continue;
          }
          if (!addrs.insert(ep->address()).second) {
            // Reported, but the upstream stays usable so its routes are still checked.
            diags.error("upstream.duplicate-endpoint", e.loc,
                        "endpoint " + ep->address() + " is listed twice in upstream " +
                            text::quote(u.name));
            continue;
          }
          out.endpoints.push_back(std::move(*ep));
        }
      }
      if (u.balance) {
        auto it = std::find(kBalanceNames.begin(), kBalanceNames.end(), *u.balance);
        if (it == kBalanceNames.end()) {
          auto& d = diags.error("value.enum", u.balance.loc,
                                "unknown balance " + text::quote(*u.balance) +
                                    " (round_robin, least_request, hash or random)");
          if (auto s = text::suggest(*u.balance, std::span<const std::string_view>(kBalanceNames)))
            d.with_hint("did you mean \"" + *s + "\"?");
          ok = false;
        } else {
          out.balance = static_cast<Balance>(it - kBalanceNames.begin());
        }
      }
      if (u.hash_on) {
        const std::string& h = *u.hash_on;
        if (h == "client_ip") {
          out.hash_on = HashOn::client_ip;
        } else if (h.starts_with("header:") && text::is_token(h.substr(7))) {
          out.hash_on = HashOn::header;
          out.hash_key = text::lower(h.substr(7));
        } else if (h.starts_with("cookie:") && text::is_token(h.substr(7))) {
          out.hash_on = HashOn::cookie;
          out.hash_key = h.substr(7);
        } else {
          diags.error("value.hash-on", u.hash_on.loc,
                      "hash_on " + text::quote(h) +
                          " must be \"client_ip\", \"header:NAME\" or \"cookie:NAME\"");
          ok = false;
        }
        if (ok && out.balance != Balance::hash)
          diags
              .error("upstream.hash-on-without-hash", u.hash_on.loc,
                     "hash_on is only used with balance = \"hash\"")
              .with_hint("add balance = \"hash\" or remove hash_on");
      } else if (out.balance == Balance::hash) {
        diags.error("upstream.hash-without-key", u.balance.loc,
                    "balance = \"hash\" needs hash_on (\"client_ip\", \"header:NAME\" or "
                    "\"cookie:NAME\")");
        ok = false;
      }
      out.connect_timeout_ms = def_connect;
      if (u.connect_timeout) {
        if (auto v = duration(u.connect_timeout, "connect_timeout"))
          out.connect_timeout_ms = *v;
        else
          ok = false;
      }
      if (ok) cfg.upstreams.push_back(std::move(out));
    }
    std::sort(cfg.upstreams.begin(), cfg.upstreams.end(),
              [](const Upstream& a, const Upstream& b) { return a.name < b.name; });
    for (std::uint32_t i = 0; i < cfg.upstreams.size(); ++i)
      upstream_index[cfg.upstreams[i].name] = i;
    for (const auto& [name, _] : seen)
      upstream_names.push_back(name);
  }

  void policies() {
    std::map<std::string, const spec::PolicySpec*> seen;
    for (const auto& p : doc.policies) {
      if (!valid_name(p.name)) {
        diags.error("name.invalid", p.loc,
                    "policy name " + text::quote(p.name) +
                        " may only contain letters, digits and _ - . : /");
        continue;
      }
      if (auto [it, fresh] = seen.emplace(p.name, &p); !fresh) {
        diags.error("name.duplicate", p.loc,
                    "policy " + text::quote(p.name) + " is already defined at " +
                        std::string(it->second->loc.file) + ":" +
                        std::to_string(it->second->loc.line));
        continue;
      }
      if (!p.kind) {
        diags.error("spec.missing-key", p.loc, "policy " + text::quote(p.name) + " has no kind")
            .with_hint("kinds: " + kinds_list());
        continue;
      }
      const policy::KindInfo* kind = policy::find_kind(*p.kind);
      if (!kind) {
        auto& d =
            diags.error("value.enum", p.kind.loc, "unknown policy kind " + text::quote(*p.kind));
        if (auto s = text::suggest(*p.kind, kind_names()))
          d.with_hint("did you mean \"" + *s + "\"?");
        else
          d.with_hint("kinds: " + kinds_list());
        continue;
      }
      // Kind-specific settings; files are read relative to the spec that names them.
      policy::Context ctx;
      ctx.policy = p.name;
      ctx.loc = p.loc;
      ctx.locs = &p.locs;
      ctx.base_dir = std::filesystem::path(std::string(p.loc.file)).parent_path();
      auto canonical = kind->compile(p.config, ctx, diags);
      if (!canonical) {
        policy_names.push_back(p.name); // known, so routes naming it get no second error
        continue;
      }
      Policy out;
      out.name = p.name;
      out.kind = *p.kind;
      out.config = canonical->dump(); // nlohmann objects are ordered maps: canonical key order
      out.src = ref(p.loc);
      cfg.policies.push_back(std::move(out));
    }
    std::sort(cfg.policies.begin(), cfg.policies.end(),
              [](const Policy& a, const Policy& b) { return a.name < b.name; });
    for (std::uint32_t i = 0; i < cfg.policies.size(); ++i)
      policy_index[cfg.policies[i].name] = i;
    // The canonical JSON as gwd will read it, for the kinds whose rows check routes and
    // references.
    policy_kinds.resize(cfg.policies.size());
    policy_settings.resize(cfg.policies.size());
    for (std::size_t i = 0; i < cfg.policies.size(); ++i) {
      policy_kinds[i] = policy::find_kind(cfg.policies[i].kind);
      if (policy_kinds[i]->needs_identity || policy_kinds[i]->references)
        policy_settings[i] = nlohmann::json::parse(cfg.policies[i].config, nullptr, false);
    }
    for (const auto& [name, _] : seen)
      policy_names.push_back(name);
    references();
  }

  struct Attach {
    std::vector<std::uint32_t> policies;
    std::vector<std::string> hosts; // lowercase
    std::string prefix;
  };
  std::vector<Attach> attachments;

  /// `[[attach]]`: policies for all routes of some hosts and/or under a path prefix.
  void attach() {
    for (const auto& a : doc.attach) {
      Attach out;
      bool ok = true;
      if (!a.policies || a.policies.value.empty()) {
        diags.error("spec.missing-key", a.loc, "[[attach]] has no policies");
        continue;
      }
      for (const auto& p : *a.policies) {
        auto it = policy_index.find(*p);
        if (it == policy_index.end()) {
          if (std::find(policy_names.begin(), policy_names.end(), *p) == policy_names.end()) {
            auto& d = diags.error("ref.unknown-policy", p.loc,
                                  "[[attach]] references unknown policy " + text::quote(*p));
            if (auto s = text::suggest(*p, policy_names))
              d.with_hint("did you mean \"" + *s + "\"?");
          }
          ok = false;
          continue;
        }
        out.policies.push_back(it->second);
      }
      if (a.hosts)
        for (const auto& h : *a.hosts)
          out.hosts.push_back(text::lower(*h));
      if (a.prefix) {
        out.prefix = *a.prefix;
        if (out.prefix.empty() || out.prefix[0] != '/') {
          diags.error("value.path", a.prefix.loc, "[[attach]] prefix must start with \"/\"");
          ok = false;
        }
      }
      if (!a.hosts && !a.prefix)
        diags.add(Severity::note, "attach.all-routes", a.loc,
                  "[[attach]] without hosts or prefix applies to every route");
      if (ok) attachments.push_back(std::move(out));
    }
  }

  static bool attached(const Attach& a, const Route& r) {
    if (!a.hosts.empty()) {
      if (r.hosts.empty()) return false; // a route for any host is not one of these hosts' routes
      for (const auto& h : r.hosts)
        if (std::find(a.hosts.begin(), a.hosts.end(), h) == a.hosts.end()) return false;
    }
    if (!a.prefix.empty()) {
      if (r.kind == MatchKind::regex || !r.pattern.starts_with(a.prefix)) return false;
      const bool boundary = a.prefix.back() == '/' || r.pattern.size() == a.prefix.size() ||
                            r.pattern[a.prefix.size()] == '/';
      if (!boundary) return false;
    }
    return true;
  }

  /// The route's policies: attached ones, then its own, ordered by phase (authentication, access,
  /// rate limit, transform; CORS first), and the rules between them.
  bool route_policies(Route& out, const spec::RouteSpec& r, const std::string& label) {
    std::vector<std::uint32_t> list;
    for (const auto& a : attachments)
      if (attached(a, out))
        for (auto idx : a.policies)
          if (std::find(list.begin(), list.end(), idx) == list.end()) list.push_back(idx);
    for (auto idx : out.policies)
      if (std::find(list.begin(), list.end(), idx) == list.end()) list.push_back(idx);
    std::stable_sort(list.begin(), list.end(), [&](std::uint32_t a, std::uint32_t b) {
      return policy_kinds[a]->phase < policy_kinds[b]->phase;
    });
    out.policies = std::move(list);

    bool ok = true, authenticated = false, claims = false;
    std::map<const policy::KindInfo*, int> once; // kinds a route may hold one policy of
    const SourceLoc at = r.policies ? r.policies.loc : r.loc;
    for (auto idx : out.policies) {
      const policy::KindInfo& k = *policy_kinds[idx];
      const auto& name = cfg.policies[idx].name;
      // Phases put the authentication policies first, so these see every one on the route.
      if (k.authenticates) authenticated = true;
      if (k.carries_claims) claims = true;
      if (k.one_per_route && ++once[&k] == 2) {
        diags.error("policy.conflict", at,
                    "route " + label + " has more than one " + std::string(k.name) + " policy");
        ok = false;
      }
      if (k.needs_identity && k.needs_identity(policy_settings[idx])) {
        policy::IdentityNeed need;
        if (k.identity_need) {
          need = k.identity_need(name, policy_settings[idx]);
        } else {
          need.message = std::string(k.name) + " policy " + text::quote(name) +
                         " needs an authentication policy (" + authenticating_kinds(true, "or") +
                         ") on the route";
          need.hint = "add one to the route's policies, or [[attach]] it";
        }
        if (!authenticated || (need.claims && !claims)) {
          auto& d = diags.error("policy.needs-authentication", at,
                                "route " + label + ": " + need.message);
          if (!need.hint.empty()) d.with_hint(need.hint);
          ok = false;
        }
      }
    }
    return ok;
  }

  /// The policies a policy names (any_of's options) are authentication policies defined in the
  /// spec, and not composite ones themselves.
  void references() {
    for (std::uint32_t i = 0; i < cfg.policies.size(); ++i) {
      if (!policy_kinds[i]->references) continue;
      const auto& p = cfg.policies[i];
      for (const auto& name : policy_kinds[i]->references(policy_settings[i])) {
        const SourceLoc at = where_defined(p.name);
        auto it = policy_index.find(name);
        if (it == policy_index.end()) {
          if (std::find(policy_names.begin(), policy_names.end(), name) != policy_names.end())
            continue; // reported already
          auto& d = diags.error("ref.unknown-policy", at,
                                "policy " + text::quote(p.name) + " names unknown policy " +
                                    text::quote(name) + " in its options");
          if (auto s = text::suggest(name, policy_names))
            d.with_hint("did you mean \"" + *s + "\"?");
          continue;
        }
        const auto& target = cfg.policies[it->second];
        const policy::KindInfo& k = *policy_kinds[it->second];
        if (!k.authenticates || k.composite || k.performs_io)
          diags.error("policy.invalid", at,
                      "policy " + text::quote(p.name) + ": option policy " + text::quote(name) +
                          " is a " + target.kind + " policy; options name " +
                          authenticating_kinds(false, "or") + " policies");
      }
    }
  }

  SourceLoc where_defined(const std::string& policy) const {
    for (const auto& p : doc.policies)
      if (p.name == policy) return p.loc;
    return SourceLoc{};
  }

  static std::string kinds_list() {
    std::string s;
    for (const auto* k : policy::kinds())
      s += (s.empty() ? "" : ", ") + std::string(k->name);
    return s;
  }

  static std::vector<std::string> kind_names() {
    std::vector<std::string> out;
    for (const auto* k : policy::kinds())
      out.emplace_back(k->name);
    return out;
  }

  /// "api_key, basic, jwt, any_of or ext_auth": the kinds that authenticate; `any`: all of them,
  /// else those an any_of option may name (not composite, no I/O).
  static std::string authenticating_kinds(bool any, std::string_view last_sep) {
    std::vector<std::string_view> names;
    for (const auto* k : policy::kinds())
      if (k->authenticates && (any || (!k->composite && !k->performs_io))) names.push_back(k->name);
    std::string s;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (i) s += i + 1 == names.size() ? " " + std::string(last_sep) + " " : std::string(", ");
      s += names[i];
    }
    return s;
  }

  bool matchers(const spec::Field<std::vector<spec::MatcherSpec>>& in, std::vector<Matcher>& out,
                bool header, const std::string& route) {
    bool ok = true;
    const std::string what = header ? "header matcher" : "query matcher";
    for (const auto& m : in.value) {
      if (!m.name) {
        diags.error("spec.missing-key", m.loc, what + " of route " + route + " has no name");
        ok = false;
        continue;
      }
      Matcher x;
      x.name = header ? text::lower(*m.name) : *m.name;
      if (header && !text::is_token(*m.name)) {
        diags.error("value.header-name", m.name.loc,
                    text::quote(*m.name) + " is not a valid header name");
        ok = false;
        continue;
      }
      int ops = 0;
      auto take = [&](const spec::Field<std::string>& f, MatchOp op) {
        if (!f) return;
        ++ops;
        x.op = op;
        x.value = *f;
      };
      take(m.exact, MatchOp::exact);
      take(m.prefix, MatchOp::prefix);
      take(m.suffix, MatchOp::suffix);
      take(m.contains, MatchOp::contains);
      take(m.regex, MatchOp::regex);
      if (m.present) {
        ++ops;
        x.op = MatchOp::present;
        x.value.clear();
        if (!*m.present) {
          diags.error("matcher.present-false", m.present.loc,
                      "present = false is not a condition; write present = true, invert = true");
          ok = false;
          continue;
        }
      }
      if (ops != 1) {
        diags.error("matcher.operator", m.loc,
                    what + " " + text::quote(*m.name) +
                        (ops == 0
                             ? " needs one of exact, prefix, suffix, contains, regex or present"
                             : " has more than one of exact, prefix, suffix, contains, regex, "
                               "present"));
        ok = false;
        continue;
      }
      if (x.op == MatchOp::regex) {
        std::string err;
        if (!compiles_as_regex(x.value, err)) {
          diags.error("value.regex", m.regex.loc,
                      "invalid regex " + text::quote(x.value) + ": " + err);
          ok = false;
          continue;
        }
      }
      x.invert = m.invert && *m.invert;
      out.push_back(std::move(x));
    }
    std::sort(out.begin(), out.end());
    for (std::size_t i = 1; i < out.size(); ++i)
      if (out[i] == out[i - 1]) {
        diags.error("matcher.duplicate", in.loc,
                    what + " " + text::quote(out[i].name) + " is listed twice");
        ok = false;
      }
    return ok;
  }

  std::vector<PrecedenceKey> keys; // parallel to cfg.routes

  void route(const spec::RouteSpec& r, std::uint32_t decl,
             std::unordered_map<std::string, SourceLoc>& names) {
    bool ok = true;
    Route out;
    out.decl = decl;
    out.src = ref(r.loc);
    std::string label;
    const auto misspelled = [&](std::string_view key) {
      return std::find(r.misspelled.begin(), r.misspelled.end(), key) != r.misspelled.end();
    };
    if (!r.name) {
      if (!r.name.bad && !misspelled("name"))
        diags.error("spec.missing-key", r.loc, "route has no name")
            .with_hint("every route needs a unique name = \"...\"");
      ok = false;
      label = "#" + std::to_string(decl + 1);
    } else {
      out.name = *r.name;
      label = text::quote(out.name);
      if (!valid_name(out.name)) {
        diags.error("name.invalid", r.name.loc,
                    "route name " + label + " may only contain letters, digits and _ - . : /");
        ok = false;
      } else if (auto [it, fresh] = names.emplace(out.name, r.name.loc); !fresh) {
        diags.error("name.duplicate", r.name.loc,
                    "route " + label + " is already defined at " + std::string(it->second.file) +
                        ":" + std::to_string(it->second.line));
        ok = false;
      }
    }

    if (r.methods) {
      out.methods = MethodSet();
      for (const auto& m : r.methods.value) {
        auto parsed = parse_method(*m);
        if (!parsed) {
          auto& d = diags.error("value.method", m.loc, "unknown method " + text::quote(*m));
          const std::string up = [&] {
            std::string s = *m;
            for (auto& c : s)
              c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            return s;
          }();
          if (parse_method(up)) d.with_hint("methods are case-sensitive: write \"" + up + "\"");
          ok = false;
          continue;
        }
        if (out.methods.contains(*parsed))
          diags.warning("value.duplicate-method", m.loc, "method " + *m + " is listed twice");
        out.methods.add(*parsed);
      }
      if (r.methods.value.empty()) {
        diags.error("value.empty", r.methods.loc, "methods is empty; omit it to accept any method");
        ok = false;
      }
    }

    if (r.hosts) {
      for (const auto& h : r.hosts.value) {
        std::string host = text::lower(*h);
        if (!host.empty() && host.back() == '.') host.pop_back();
        if (host == "*") {
          diags.error("value.host", h.loc, "\"*\" is not a host; omit hosts to accept any host");
          ok = false;
          continue;
        }
        if (auto err = check_host(host); !err.empty()) {
          auto& d = diags.error("value.host", h.loc, text::quote(*h) + ": " + err);
          if (host.find(':') != std::string::npos)
            d.with_hint("hosts are matched without the port; write " +
                        text::quote(host.substr(0, host.find(':'))));
          ok = false;
          continue;
        }
        if (std::find(out.hosts.begin(), out.hosts.end(), host) != out.hosts.end()) {
          diags.warning("value.duplicate-host", h.loc,
                        "host " + text::quote(host) + " is listed twice");
          continue;
        }
        out.hosts.push_back(std::move(host));
      }
      if (r.hosts.value.empty()) {
        diags.error("value.empty", r.hosts.loc, "hosts is empty; omit it to accept any host");
        ok = false;
      }
      std::sort(out.hosts.begin(), out.hosts.end());
    }

    // Exactly one of path | prefix | template | regex.
    const std::array<std::pair<const spec::Field<std::string>*, MatchKind>, 4> kinds = {{
        {&r.path, MatchKind::exact},
        {&r.template_, MatchKind::template_},
        {&r.prefix, MatchKind::prefix},
        {&r.regex, MatchKind::regex},
    }};
    int count = 0;
    const spec::Field<std::string>* match = nullptr;
    for (const auto& [f, kind] : kinds) {
      if (!f->set) continue;
      ++count;
      if (count == 1) {
        match = f;
        out.kind = kind;
      } else {
        diags.error("route.match", f->loc,
                    "route " + label + " has more than one of path, prefix, template and regex");
        ok = false;
      }
    }
    const bool match_reported = r.path.bad || r.prefix.bad || r.template_.bad || r.regex.bad ||
                                misspelled("path") || misspelled("prefix") ||
                                misspelled("template") || misspelled("regex");
    if (count == 0 && match_reported) {
      ok = false;
    } else if (count == 0) {
      diags
          .error("route.match", r.loc, "route " + label + " has no path, prefix, template or regex")
          .with_hint("for example: template = \"/pets/{id}\"");
      ok = false;
    }
    std::vector<std::string> params;
    std::optional<PathTemplate> parsed;
    if (match) {
      const std::string& p = **match;
      switch (out.kind) {
      case MatchKind::exact:
      case MatchKind::prefix: {
        auto c = uri::canonical_spec_path(p);
        if (!c) {
          diags.error("value.path", match->loc,
                      std::string(to_string(out.kind)) + " " + text::quote(p) + " " +
                          c.error().message);
          ok = false;
        } else {
          out.pattern = *c;
          if (out.kind == MatchKind::exact && p.find('{') != std::string::npos)
            diags
                .warning("route.braces-in-path", match->loc,
                         "path " + text::quote(p) + " contains \"{\": braces are literal here")
                .with_hint("use template = " + text::quote(p) + " to capture parameters");
        }
        break;
      }
      case MatchKind::template_: {
        auto t = PathTemplate::parse(p);
        if (!t) {
          diags.error("value.template", match->loc,
                      "template " + text::quote(p) + ": " + t.error().message);
          ok = false;
        } else if (t->is_literal()) {
          // A template without parameters is an exact path; store it as one.
          out.kind = MatchKind::exact;
          out.pattern = t->text();
        } else {
          out.pattern = t->text();
          params = t->param_names();
          parsed = std::move(*t);
        }
        break;
      }
      case MatchKind::regex: {
        std::string err;
        if (!compiles_as_regex(p, err)) {
          diags.error("value.regex", match->loc, "invalid regex " + text::quote(p) + ": " + err);
          ok = false;
        } else {
          out.pattern = p;
        }
        break;
      }
      }
    }
    if (r.priority) {
      if (out.kind != MatchKind::regex) {
        diags.error("route.priority", r.priority.loc,
                    "priority only orders regex routes; other routes are ordered by specificity");
        ok = false;
      } else if (*r.priority < -1000000 || *r.priority > 1000000) {
        diags.error("value.range", r.priority.loc, "priority must be between -1000000 and 1000000");
        ok = false;
      } else {
        out.priority = static_cast<std::int32_t>(*r.priority);
      }
    }

    if (!r.upstream && (r.upstream.bad || misspelled("upstream"))) {
      ok = false;
    } else if (!r.upstream) {
      diags.error("spec.missing-key", r.loc, "route " + label + " has no upstream")
          .with_hint(upstream_names.empty()
                         ? "define one under [upstreams.NAME]"
                         : "for example: upstream = \"" + upstream_names[0] + "\"");
      ok = false;
    } else if (auto it = upstream_index.find(*r.upstream); it != upstream_index.end()) {
      out.upstream = it->second;
    } else {
      const bool defined = std::find(upstream_names.begin(), upstream_names.end(), *r.upstream) !=
                           upstream_names.end();
      if (!defined) {
        auto& d = diags.error("ref.unknown-upstream", r.upstream.loc,
                              "route " + label + " references unknown upstream " +
                                  text::quote(*r.upstream));
        if (auto s = text::suggest(*r.upstream, upstream_names))
          d.with_hint("did you mean \"" + *s + "\"?");
      } // else: the upstream itself has errors, already reported
      ok = false;
    }

    out.timeout_ms = def_timeout;
    out.per_try_timeout_ms = def_per_try;
    out.retries = def_retries;
    out.max_body = def_max_body;
    if (auto v = duration(r.timeout, "timeout"))
      out.timeout_ms = *v;
    else if (r.timeout)
      ok = false;
    if (auto v = duration(r.per_try_timeout, "per_try_timeout"))
      out.per_try_timeout_ms = *v;
    else if (r.per_try_timeout)
      ok = false;
    if (auto v = retries(r.retries, "retries"))
      out.retries = *v;
    else if (r.retries)
      ok = false;
    if (auto v = size(r.max_body, "max_body"))
      out.max_body = *v;
    else if (r.max_body)
      ok = false;
    if (out.per_try_timeout_ms > out.timeout_ms)
      diags.warning(
          "route.per-try-timeout", r.per_try_timeout ? r.per_try_timeout.loc : r.loc,
          "per_try_timeout " + units::format_duration(units::Millis(out.per_try_timeout_ms)) +
              " is longer than the route timeout " +
              units::format_duration(units::Millis(out.timeout_ms)) + " and never applies");

    if (r.policies) {
      for (const auto& p : r.policies.value) {
        auto it = policy_index.find(*p);
        if (it == policy_index.end()) {
          if (std::find(policy_names.begin(), policy_names.end(), *p) == policy_names.end()) {
            auto& d =
                diags.error("ref.unknown-policy", p.loc,
                            "route " + label + " references unknown policy " + text::quote(*p));
            if (auto s = text::suggest(*p, policy_names))
              d.with_hint("did you mean \"" + *s + "\"?");
          }
          ok = false;
          continue;
        }
        if (std::find(out.policies.begin(), out.policies.end(), it->second) != out.policies.end()) {
          diags.error("ref.duplicate-policy", p.loc,
                      "policy " + text::quote(*p) + " is listed twice");
          ok = false;
          continue;
        }
        out.policies.push_back(it->second);
      }
    }

    ok &= matchers(r.headers, out.headers, true, label);
    ok &= matchers(r.query, out.query, false, label);

    if (r.rewrite.set) {
      if (r.rewrite.path) {
        auto t = PathTemplate::parse(*r.rewrite.path);
        if (!t) {
          diags.error("value.template", r.rewrite.path.loc,
                      "rewrite.path " + text::quote(*r.rewrite.path) + ": " + t.error().message);
          ok = false;
        } else {
          for (const auto& n : t->param_names()) {
            if (std::find(params.begin(), params.end(), n) == params.end()) {
              auto& d =
                  diags.error("ref.unknown-param", r.rewrite.path.loc,
                              "rewrite.path uses {" + n + "}, which the route does not capture");
              if (auto s = text::suggest(n, params)) d.with_hint("did you mean {" + *s + "}?");
              ok = false;
            }
          }
          out.rewrite.path = t->text();
        }
      }
      if (r.rewrite.prefix) {
        if (out.kind != MatchKind::prefix) {
          diags.error("route.rewrite-prefix", r.rewrite.prefix.loc,
                      "rewrite.prefix replaces the matched prefix, so it needs a prefix route");
          ok = false;
        } else if (auto c = uri::canonical_spec_path(*r.rewrite.prefix); !c) {
          diags.error("value.path", r.rewrite.prefix.loc,
                      "rewrite.prefix " + text::quote(*r.rewrite.prefix) + " " + c.error().message);
          ok = false;
        } else {
          out.rewrite.prefix = *c;
        }
        if (r.rewrite.path) {
          diags.error("route.rewrite", r.rewrite.loc,
                      "rewrite.path and rewrite.prefix exclude each other");
          ok = false;
        }
      }
      if (r.rewrite.host) {
        std::string h = text::lower(*r.rewrite.host);
        if (auto err = check_host(h); !err.empty() || h.starts_with("*")) {
          diags.error("value.host", r.rewrite.host.loc,
                      "rewrite.host " + text::quote(*r.rewrite.host) + ": " +
                          (err.empty() ? std::string("must not be a wildcard") : err));
          ok = false;
        } else {
          out.rewrite.host = h;
        }
      }
    }

    ok &= route_policies(out, r, label);
    if (ok) {
      keys.push_back(precedence_key(out, parsed ? &*parsed : nullptr));
      cfg.routes.push_back(std::move(out));
    }
  }

  void run() {
    for (std::uint32_t i = 0; i < doc.files.size(); ++i) {
      file_index[doc.files[i]->name.data()] = i;
      cfg.sources.push_back(Source{doc.files[i]->name, doc.files[i]->digest, doc.files[i]->name});
    }
    defaults();
    upstreams();
    policies();
    attach();
    std::unordered_map<std::string, SourceLoc> names;
    names.reserve(doc.routes.size());
    cfg.routes.reserve(doc.routes.size());
    keys.reserve(doc.routes.size());
    for (std::uint32_t i = 0; i < doc.routes.size(); ++i)
      route(doc.routes[i], i, names);
    sort_by_precedence(cfg.routes, keys);
  }
};

} // namespace

std::string check_host(std::string_view host) {
  if (host.empty()) return "empty host";
  if (host.size() > 253) return "longer than 253 characters";
  std::string_view rest = host;
  if (rest.starts_with("*."))
    rest.remove_prefix(2);
  else if (rest.find('*') != std::string_view::npos)
    return "\"*\" is only allowed as a whole leading label (\"*.example.com\")";
  if (rest.empty()) return "wildcard without a domain";
  std::size_t label = 0;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '.') {
      if (label == 0) return "empty label";
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) {
      if (c == ':') return "contains a port";
      if (static_cast<unsigned char>(c) >= 0x80)
        return "non-ASCII host; write its punycode (xn--) form";
      return "invalid character " + text::quote(std::string_view(&c, 1));
    }
    if (++label > 63) return "label longer than 63 characters";
  }
  if (label == 0) return "empty label";
  return "";
}

Config validate(const spec::Document& doc, Diagnostics& diags) {
  Validator v{doc, diags, {}, {}, {}, {}, {}, {}};
  v.run();
  return std::move(v.cfg);
}

} // namespace gw::model
