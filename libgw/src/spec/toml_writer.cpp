#include "gw/spec/toml_writer.hpp"

#include <optional>
#include <sstream>
#include <variant>

#include <toml++/toml.h>

namespace gw::spec {
namespace {

// Basic (double-quoted) strings throughout, like hand-written specs.
constexpr auto kFlags =
    toml::toml_formatter::default_flags & ~toml::format_flags::allow_literal_strings;

std::string str(std::string_view s) {
  std::ostringstream os;
  os << toml::toml_formatter{toml::value<std::string>(std::string(s)), kFlags};
  return os.str();
}

/// A bare key when TOML allows one, else a quoted key.
std::string key(std::string_view k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (bare) return std::string(k);
  return str(k);
}

std::string where(const SourceLoc& loc) {
  if (loc.file.empty()) return {};
  return std::string(loc.file) + (loc.line ? ":" + std::to_string(loc.line) : "");
}

/// A JSON value (policy settings) as TOML; nested tables are inline. Null has no TOML form.
using TomlValue = std::variant<toml::table, toml::array, std::string, bool, std::int64_t, double>;
std::optional<TomlValue> to_toml(const nlohmann::json& v) {
  if (v.is_object()) {
    toml::table t;
    t.is_inline(true);
    for (auto it = v.begin(); it != v.end(); ++it)
      if (auto x = to_toml(it.value()))
        std::visit([&](auto&& e) { t.insert_or_assign(it.key(), std::move(e)); }, std::move(*x));
    return t;
  }
  if (v.is_array()) {
    toml::array a;
    for (const auto& item : v)
      if (auto x = to_toml(item))
        std::visit([&](auto&& e) { a.push_back(std::move(e)); }, std::move(*x));
    return a;
  }
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

std::string list(const StringList& l) {
  std::string s = "[";
  for (std::size_t i = 0; i < l.size(); ++i)
    s += (i ? ", " : "") + str(*l[i]);
  return s + "]";
}

std::string matchers(const std::vector<MatcherSpec>& ms) {
  std::string s = "[";
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const auto& m = ms[i];
    s += i ? ", { " : "{ ";
    std::string body;
    auto add = [&](const char* k, const Field<std::string>& f) {
      if (f) body += (body.empty() ? "" : ", ") + std::string(k) + " = " + str(*f);
    };
    add("name", m.name);
    add("exact", m.exact);
    add("prefix", m.prefix);
    add("suffix", m.suffix);
    add("contains", m.contains);
    add("regex", m.regex);
    if (m.present)
      body +=
          (body.empty() ? "" : ", ") + std::string("present = ") + (*m.present ? "true" : "false");
    if (m.invert)
      body +=
          (body.empty() ? "" : ", ") + std::string("invert = ") + (*m.invert ? "true" : "false");
    s += body + " }";
  }
  return s + "]";
}

} // namespace

std::string write_toml(const Document& doc, std::string_view header) {
  std::ostringstream out;
  if (!header.empty()) {
    std::istringstream lines{std::string(header)};
    for (std::string line; std::getline(lines, line);)
      out << (line.empty() ? "#" : "# " + line) << '\n';
  }
  out << "version = 1\n";

  const auto& d = doc.defaults;
  if (d.timeout || d.per_try_timeout || d.connect_timeout || d.retries || d.max_body) {
    out << "\n[defaults]\n";
    if (d.timeout) out << "timeout = " << str(*d.timeout) << '\n';
    if (d.per_try_timeout) out << "per_try_timeout = " << str(*d.per_try_timeout) << '\n';
    if (d.connect_timeout) out << "connect_timeout = " << str(*d.connect_timeout) << '\n';
    if (d.retries) out << "retries = " << *d.retries << '\n';
    if (d.max_body) out << "max_body = " << str(*d.max_body) << '\n';
  }

  for (const auto& u : doc.upstreams) {
    out << "\n[upstreams." << key(u.name) << "]";
    if (auto w = where(u.loc); !w.empty()) out << "  # " << w;
    out << '\n';
    if (u.endpoints) {
      out << "endpoints = [";
      for (std::size_t i = 0; i < u.endpoints.value.size(); ++i) {
        const auto& e = (*u.endpoints)[i];
        out << (i ? ", " : "");
        if (e.weight)
          out << "{ address = " << str(*e.address) << ", weight = " << *e.weight << " }";
        else
          out << str(*e.address);
      }
      out << "]\n";
    }
    if (u.balance) out << "balance = " << str(*u.balance) << '\n';
    if (u.hash_on) out << "hash_on = " << str(*u.hash_on) << '\n';
    if (u.connect_timeout) out << "connect_timeout = " << str(*u.connect_timeout) << '\n';
  }

  for (const auto& p : doc.policies) {
    out << "\n[policies." << key(p.name) << "]";
    if (auto w = where(p.loc); !w.empty()) out << "  # " << w;
    out << "\nkind = " << str(*p.kind) << '\n';
    auto config = to_toml(p.config);
    if (auto* t = config ? std::get_if<toml::table>(&*config) : nullptr; t && !t->empty()) {
      t->is_inline(false); // the policy's own keys one a line; nested tables stay inline
      out << toml::toml_formatter{*t, kFlags} << '\n';
    }
  }

  for (const auto& a : doc.attach) {
    out << "\n[[attach]]";
    if (auto w = where(a.loc); !w.empty()) out << "  # " << w;
    out << '\n';
    if (a.hosts) out << "hosts = " << list(*a.hosts) << '\n';
    if (a.prefix) out << "prefix = " << str(*a.prefix) << '\n';
    if (a.policies) out << "policies = " << list(*a.policies) << '\n';
  }

  for (const auto& r : doc.routes) {
    out << "\n[[routes]]";
    if (auto w = where(r.loc); !w.empty()) out << "  # " << w;
    out << '\n';
    if (r.name) out << "name = " << str(*r.name) << '\n';
    if (r.methods) out << "methods = " << list(*r.methods) << '\n';
    if (r.hosts) out << "hosts = " << list(*r.hosts) << '\n';
    if (r.path) out << "path = " << str(*r.path) << '\n';
    if (r.template_) out << "template = " << str(*r.template_) << '\n';
    if (r.prefix) out << "prefix = " << str(*r.prefix) << '\n';
    if (r.regex) out << "regex = " << str(*r.regex) << '\n';
    if (r.priority) out << "priority = " << *r.priority << '\n';
    if (r.headers) out << "headers = " << matchers(*r.headers) << '\n';
    if (r.query) out << "query = " << matchers(*r.query) << '\n';
    if (r.upstream) out << "upstream = " << str(*r.upstream) << '\n';
    if (r.timeout) out << "timeout = " << str(*r.timeout) << '\n';
    if (r.per_try_timeout) out << "per_try_timeout = " << str(*r.per_try_timeout) << '\n';
    if (r.retries) out << "retries = " << *r.retries << '\n';
    if (r.max_body) out << "max_body = " << str(*r.max_body) << '\n';
    if (r.policies) out << "policies = " << list(*r.policies) << '\n';
    if (r.rewrite.set) {
      std::string body;
      auto add = [&](const char* k, const Field<std::string>& f) {
        if (f) body += (body.empty() ? "" : ", ") + std::string(k) + " = " + str(*f);
      };
      add("path", r.rewrite.path);
      add("prefix", r.rewrite.prefix);
      add("host", r.rewrite.host);
      out << "rewrite = { " << body << " }\n";
    }
  }
  return out.str();
}

} // namespace gw::spec
