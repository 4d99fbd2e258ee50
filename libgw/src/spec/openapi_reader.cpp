#include "gw/spec/openapi_reader.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "gw/core/file.hpp"
#include "gw/core/text.hpp"
#include "gw/spec/tree.hpp"

namespace gw::spec {
namespace {

namespace fs = std::filesystem;
using namespace std::string_view_literals;

constexpr std::array kMethods = {"get"sv,     "put"sv,  "post"sv,  "delete"sv,
                                 "options"sv, "head"sv, "patch"sv, "trace"sv};
constexpr std::array kExtensions = {"x-gw-upstream"sv, "x-gw-timeout"sv,  "x-gw-retries"sv,
                                    "x-gw-max-body"sv, "x-gw-policies"sv, "x-gw-rate-limit"sv,
                                    "x-gw-hosts"sv,    "x-gw-name"sv,     "x-gw-ignore"sv};

std::string pointer_unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '~' && i + 1 < s.size()) {
      out += s[i + 1] == '1' ? '/' : '~';
      ++i;
    } else if (unsigned v = 0;
               s[i] == '%' && i + 2 < s.size() &&
               std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out += static_cast<char>(v); // a percent-encoded URI fragment
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// Route, upstream and policy names use letters, digits and _ - . : /; anything else becomes '-'.
std::string sanitize_name(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == ':' || c == '/';
    out += ok ? c : '-';
  }
  while (out.find("--") != std::string::npos)
    out.replace(out.find("--"), 2, "-");
  while (!out.empty() && out.back() == '-')
    out.pop_back();
  while (!out.empty() && out.front() == '-')
    out.erase(0, 1);
  if (out.size() > 120) out.resize(120);
  return out.empty() ? "route" : out;
}

/// A parsed, resolved document: the file and its tree.
struct Loaded {
  std::string path; // as given (relative paths resolve from its directory)
  const SourceFile* file = nullptr;
  std::unique_ptr<Node> root;
};

struct Server {
  std::string url;    // expanded
  std::string scheme; // "http" | "https" | ""
  std::string host;   // "" for a relative server
  std::uint16_t port = 0;
  std::string base;     // path part, no trailing "/"
  bool bad = false;     // reported; its operations get no route
  bool missing = false; // stands in for the servers a document does not have
  std::string pointer;  // "" when missing
  SourceLoc loc;

  /// The endpoint address: "host:port", or "[v6]:port".
  std::string address() const {
    const std::string p = ":" + std::to_string(port);
    return host.find(':') != std::string::npos ? "[" + host + "]" + p : host + p;
  }
};

struct Scheme {
  std::string policy;  // the gw policy it becomes ("" when it cannot be enforced)
  std::string why_not; // why it cannot be enforced
};

/// Where x-gw-* extensions sit; x-gw-name is only meaningful on an operation.
enum class Level { root, path_item, operation };

/// A node and the document it was read from, for diagnostics that name the right file.
struct Located {
  const Node* node = nullptr;
  const Loaded* in = nullptr;
  explicit operator bool() const { return node != nullptr; }
  const Node* operator->() const { return node; }
  const Node& operator*() const { return *node; }
  SourceLoc loc() const { return SourceLoc{in->file->name, node->line, node->col}; }
};

/// Effective gateway settings: root, then path item, then operation (most specific wins). The
/// root's come from the main document, the others from wherever the path item was read.
struct Extensions {
  Located upstream, timeout, retries, max_body, policies, rate_limit, hosts, name, ignore;
};

class Importer {
public:
  Importer(SourceSet& sources, Document& doc, Diagnostics& diags, const OpenApiOptions& opts,
           ImportSummary& summary)
      : sources_(sources), doc_(doc), diags_(diags), opts_(opts), summary_(summary) {}

  void run(std::string name, std::string text) {
    first_route_ = doc_.routes.size();
    const SourceFile& file = sources_.add(std::move(name), std::move(text));
    doc_.files.push_back(&file);
    TreeFormat fmt;
    auto root = parse_tree(file.name, file.text, diags_, &fmt);
    if (!root) return;
    root_dir_ = fs::absolute(fs::path(file.name)).parent_path().lexically_normal();
    docs_[fs::absolute(fs::path(file.name)).lexically_normal().string()] =
        Loaded{file.name, &file, std::move(root)};
    main_ = &docs_.begin()->second;
    const Node& r = *main_->root;
    if (!r.is_object()) {
      error("openapi.not-openapi", loc(r, *main_), "",
            "not an OpenAPI document: the top level is not an object");
      return;
    }
    const std::string fmt_name = fmt == TreeFormat::json ? "JSON" : "YAML";
    if (const Node* v = r.get("openapi")) {
      if (!(v->text.starts_with("3.0") || v->text.starts_with("3.1"))) {
        error("openapi.unsupported-version", loc(*v, *main_), "/openapi",
              "OpenAPI " + v->text + " is not supported (3.0.x, 3.1.x and Swagger 2.0 are)");
        return;
      }
      summary_.format = "OpenAPI " + v->text + " (" + fmt_name + ")";
      swagger_ = false;
    } else if (const Node* s = r.get("swagger")) {
      if (s->text != "2.0") {
        error("openapi.unsupported-version", loc(*s, *main_), "/swagger",
              "Swagger " + s->text + " is not supported (2.0 is)");
        return;
      }
      summary_.format = "Swagger 2.0 (" + fmt_name + ")";
      swagger_ = true;
    } else {
      error("openapi.not-openapi", loc(r, *main_), "",
            "not an OpenAPI document: it has neither an `openapi` nor a `swagger` field");
      return;
    }
    if (const Node* info = r.get("info"))
      summary_.title = info->str("title") + " " + info->str("version");

    check_extensions(r, *main_, "", Level::root);
    root_ext_ = extensions(r, *main_, Extensions{});
    root_servers_ = swagger_ ? swagger_servers(r) : servers(r.get("servers"), *main_, "/servers");
    read_schemes(r);
    root_security_ = r.get("security");

    const Node* paths = r.get("paths");
    if (!paths || !paths->is_object() || paths->members.empty()) {
      diags_.add(Severity::note, "openapi.no-paths", loc(r, *main_),
                 "the document has no paths: it yields zero routes" +
                     std::string(r.get("webhooks") ? " (webhooks are not routes)" : ""));
    } else {
      for (const auto& [key, item] : paths->members)
        path_item(key, item);
    }
    for (const char* skip : {"webhooks"})
      if (const Node* w = r.get(skip); w && w->is_object() && !w->members.empty())
        note(loc(*w, *main_), "/" + std::string(skip),
             std::to_string(w->members.size()) +
                 " webhook(s) are requests the API sends, not routes");
    finish_upstreams();
  }

private:
  // ---- diagnostics
  /// Where `n` is: a node carries its line and column, the document `in` its file.
  static SourceLoc loc(const Node& n, const Loaded& in) {
    return SourceLoc{in.file->name, n.line, n.col};
  }
  void report(Severity sev, const char* code, const SourceLoc& at, const std::string& pointer,
              std::string msg, std::string hint) {
    auto& d = diags_.add(sev, code, at, std::move(msg)).at_pointer(pointer);
    if (!hint.empty()) d.with_hint(std::move(hint));
  }
  void error(const char* code, const SourceLoc& at, const std::string& pointer, std::string msg,
             std::string hint = {}) {
    report(Severity::error, code, at, pointer, std::move(msg), std::move(hint));
  }
  /// A construct dropped or approximated: a warning, which --strict makes an error.
  void loss(const char* code, const SourceLoc& at, const std::string& pointer, std::string msg,
            std::string hint = {}) {
    report(Severity::warning, code, at, pointer, std::move(msg), std::move(hint));
  }
  void note(const SourceLoc& at, const std::string& pointer, std::string msg) {
    report(Severity::note, "openapi.note", at, pointer, std::move(msg), {});
  }
  const UpstreamSpec* defined_elsewhere(const std::string& upstream) const {
    for (const auto& u : doc_.upstreams)
      if (u.name == upstream && !u.imported) return &u;
    return nullptr;
  }

  // ---- $ref
  /// Follows `$ref`s from `n` (internal JSON pointers and relative files under the document's
  /// folder; never the network). Returns the target and the document it lives in, or null.
  std::pair<const Node*, Loaded*> resolve(const Node& n, Loaded& in, const std::string& pointer) {
    const Node* cur = &n;
    Loaded* doc = &in;
    std::set<std::string> seen;
    for (int hops = 0; cur->is_object() && cur->get("$ref"); ++hops) {
      const Node& ref = *cur->get("$ref");
      const std::string target = ref.text;
      if (hops > 32 || !seen.insert(doc->path + "#" + target).second) {
        error("openapi.ref-cycle", loc(ref, *doc), pointer + "/$ref",
              "cyclic $ref " + text::quote(target));
        return {nullptr, nullptr};
      }
      const auto hash = target.find('#');
      const std::string file_part = target.substr(0, hash);
      const std::string frag = hash == std::string::npos ? "" : target.substr(hash + 1);
      if (!file_part.empty()) {
        if (file_part.find("://") != std::string::npos) {
          loss("openapi.dropped", loc(ref, *doc), pointer + "/$ref",
               "$ref " + text::quote(target) + " points at the network; gw never fetches documents",
               "download it next to the document and refer to it by a relative path");
          return {nullptr, nullptr};
        }
        const fs::path base = fs::absolute(fs::path(doc->path)).parent_path();
        const fs::path full = (base / file_part).lexically_normal();
        const auto rel = full.lexically_relative(root_dir_);
        if (rel.empty() || rel.native().starts_with("..")) {
          error("openapi.ref-outside", loc(ref, *doc), pointer + "/$ref",
                "$ref " + text::quote(target) + " leaves the document's folder " +
                    root_dir_.string());
          return {nullptr, nullptr};
        }
        Loaded* next = load_external(full.string(), loc(ref, *doc), pointer);
        if (!next) return {nullptr, nullptr};
        doc = next;
      }
      const Node* at = doc->root.get();
      if (!frag.empty()) {
        if (frag[0] != '/') {
          error("openapi.bad-ref", loc(ref, *doc), pointer + "/$ref",
                "$ref fragment " + text::quote(frag) + " is not a JSON pointer");
          return {nullptr, nullptr};
        }
        std::size_t pos = 1;
        while (at && pos <= frag.size()) {
          const std::size_t slash = frag.find('/', pos);
          const std::string token = pointer_unescape(
              frag.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos));
          if (at->is_object())
            at = at->get(token);
          else if (at->is_array()) {
            std::size_t idx = 0;
            const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), idx);
            const bool ok = !token.empty() && ec == std::errc{} &&
                            end == token.data() + token.size() && idx < at->items.size();
            at = ok ? &at->items[idx] : nullptr;
          } else
            at = nullptr;
          if (slash == std::string::npos) break;
          pos = slash + 1;
        }
        if (!at) {
          error("openapi.bad-ref", loc(ref, *doc), pointer + "/$ref",
                "$ref " + text::quote(target) + " points at nothing");
          return {nullptr, nullptr};
        }
      }
      cur = at;
    }
    return {cur, doc};
  }

  Loaded* load_external(const std::string& full, const SourceLoc& ref, const std::string& pointer) {
    if (auto it = docs_.find(full); it != docs_.end())
      return it->second.root ? &it->second : nullptr;
    auto text = file::read_all(full, kMaxOpenApiBytes);
    if (!text) {
      error("openapi.bad-ref", ref, pointer + "/$ref",
            "$ref file " + full + ": " + text.error().message);
      docs_[full] = Loaded{full, nullptr, nullptr};
      return nullptr;
    }
    const SourceFile& f = sources_.add(full, std::move(*text));
    auto tree = parse_tree(f.name, f.text, diags_);
    docs_[full] = Loaded{full, &f, std::move(tree)};
    return docs_[full].root ? &docs_[full] : nullptr;
  }

  // ---- extensions
  /// Unknown x-gw-* keys and values of the wrong type are errors (the JSON Schema in specs/ says
  /// the same); what the values mean is checked by model::validate, like TOML values.
  void check_extensions(const Node& n, const Loaded& in, const std::string& pointer, Level level) {
    if (!n.is_object()) return;
    for (const auto& [k, v] : n.members) {
      if (!k.starts_with("x-gw-")) continue;
      if (std::find(kExtensions.begin(), kExtensions.end(), k) != kExtensions.end()) {
        check_extension_type(k, v, in, pointer + "/" + text::pointer_token(k), level);
        continue;
      }
      auto& d = diags_
                    .error("openapi.unknown-extension", loc(v, in),
                           "unknown gw extension " + text::quote(k))
                    .at_pointer(pointer + "/" + text::pointer_token(k));
      if (auto s = text::suggest(k, std::span<const std::string_view>(kExtensions)))
        d.with_hint("did you mean \"" + *s + "\"?");
    }
  }

  void check_extension_type(const std::string& k, const Node& v, const Loaded& in,
                            const std::string& pointer, Level level) {
    using K = Node::Kind;
    auto strings = [](const Node& n) {
      return n.is_array() && std::all_of(n.items.begin(), n.items.end(),
                                         [](const Node& e) { return e.is_string(); });
    };
    std::string expected;
    if (k == "x-gw-name" && level != Level::operation) {
      error("openapi.bad-extension", loc(v, in), pointer,
            "x-gw-name names one operation's route; put it on an operation");
      return;
    }
    if (k == "x-gw-upstream" || k == "x-gw-timeout" || k == "x-gw-name") {
      if (!v.is_string()) expected = "a string";
    } else if (k == "x-gw-retries") {
      if (v.kind != K::number || v.text.find_first_not_of("0123456789") != std::string::npos)
        expected = "a non-negative integer";
    } else if (k == "x-gw-max-body") {
      if (!v.is_string() &&
          (v.kind != K::number || v.text.find_first_not_of("0123456789") != std::string::npos))
        expected = "a size (\"1MiB\") or a number of bytes";
    } else if (k == "x-gw-policies" || k == "x-gw-hosts") {
      if (!strings(v)) expected = "an array of strings";
    } else if (k == "x-gw-rate-limit") {
      if (!v.is_string() && !v.is_object())
        expected = "a rate (\"100/s\") or a table { rate, burst, key }";
    } else if (k == "x-gw-ignore") {
      if (v.kind != K::boolean) expected = "true or false";
    }
    if (!expected.empty())
      error("openapi.bad-extension", loc(v, in), pointer, k + " must be " + expected);
  }

  static Extensions extensions(const Node& n, const Loaded& in, Extensions base) {
    auto take = [&](Located& slot, std::string_view key) {
      if (const Node* v = n.get(key)) slot = Located{v, &in};
    };
    take(base.upstream, "x-gw-upstream");
    take(base.timeout, "x-gw-timeout");
    take(base.retries, "x-gw-retries");
    take(base.max_body, "x-gw-max-body");
    take(base.policies, "x-gw-policies");
    take(base.rate_limit, "x-gw-rate-limit");
    take(base.hosts, "x-gw-hosts");
    base.name = Located{n.get("x-gw-name"), &in};
    take(base.ignore, "x-gw-ignore");
    return base;
  }

  // ---- servers
  std::vector<Server> servers(const Node* list, const Loaded& in, const std::string& pointer) {
    std::vector<Server> out;
    if (!list || !list->is_array()) return out;
    for (std::size_t i = 0; i < list->items.size(); ++i) {
      const Node& s = list->items[i];
      const std::string p = pointer + "/" + std::to_string(i);
      std::string url = s.str("url");
      // Server variables take their defaults; other enum values are reported.
      if (const Node* vars = s.get("variables"); vars && vars->is_object()) {
        for (const auto& [var, spec] : vars->members) {
          const std::string def = spec.str("default");
          // One pass: a default that contains "{var}" is not expanded again.
          const std::string token = "{" + var + "}";
          for (auto at = url.find(token); at != std::string::npos;
               at = url.find(token, at + def.size()))
            url.replace(at, token.size(), def);
          if (const Node* en = spec.get("enum"); en && en->is_array() && en->items.size() > 1) {
            std::vector<std::string> others;
            for (const auto& e : en->items)
              if (e.text != def) others.push_back(e.text);
            loss("openapi.approximated", loc(spec, in),
                 p + "/variables/" + text::pointer_token(var),
                 "server variable {" + var + "} uses its default " + text::quote(def) +
                     "; other values (" + text::join(others, ", ") + ") are not served",
                 "serve another value with a second import, or edit the upstream");
          }
        }
      }
      if (url.find('{') != std::string::npos)
        error("openapi.server-variable", loc(s, in), p + "/url",
              "server url " + text::quote(url) + " has a variable without a definition");
      out.push_back(parse_server(url, p, loc(s, in)));
    }
    return out;
  }

  Server parse_server(const std::string& url, const std::string& pointer, const SourceLoc& where) {
    Server sv;
    sv.url = url;
    sv.pointer = pointer;
    sv.loc = where;
    std::string rest = url;
    if (const auto scheme_end = url.find("://"); scheme_end != std::string::npos) {
      sv.scheme = text::lower(url.substr(0, scheme_end));
      rest = url.substr(scheme_end + 3);
      const auto slash = rest.find('/');
      std::string authority = rest.substr(0, slash);
      rest = slash == std::string::npos ? "" : rest.substr(slash);
      if (const auto at = authority.rfind('@'); at != std::string::npos)
        authority = authority.substr(at + 1);
      std::string port;
      if (!authority.empty() && authority[0] == '[') {
        const auto close = authority.find(']');
        sv.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':')
          port = authority.substr(close + 2);
      } else if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
        sv.host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
      } else {
        sv.host = authority;
      }
      sv.port = sv.scheme == "https" ? 443 : 80;
      if (!port.empty()) {
        unsigned p = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) {
          error("openapi.bad-server", where, pointer.empty() ? "" : pointer + "/url",
                "server url " + text::quote(url) + " has a bad port " + text::quote(port));
          sv.bad = true;
        } else {
          sv.port = static_cast<std::uint16_t>(p);
        }
      }
    } else if (url.starts_with("//")) {
      // Scheme-relative: treat as plain HTTP, reported below with the other approximations.
      return parse_server("http:" + url, pointer, where);
    }
    // A relative server ("/v1", "", "./api") keeps only its path: the host comes from --upstream.
    if (const auto q = rest.find_first_of("?#"); q != std::string::npos) rest = rest.substr(0, q);
    if (rest.starts_with("./")) rest = rest.substr(1);
    if (!rest.empty() && rest[0] != '/') rest = "/" + rest;
    while (!rest.empty() && rest.back() == '/')
      rest.pop_back();
    sv.base = rest;
    return sv;
  }

  std::vector<Server> swagger_servers(const Node& r) {
    const std::string host = r.str("host");
    std::string base = r.str("basePath");
    std::vector<std::string> schemes;
    if (const Node* s = r.get("schemes"); s && s->is_array())
      for (const auto& x : s->items)
        schemes.push_back(text::lower(x.text));
    if (schemes.empty()) schemes.push_back("http");
    std::vector<Server> out;
    // The first scheme serves; others are reported, like extra OpenAPI servers.
    const std::string scheme =
        std::find(schemes.begin(), schemes.end(), "http") != schemes.end() ? "http" : schemes[0];
    const std::string url = host.empty() ? base : scheme + "://" + host + base;
    out.push_back(parse_server(url, host.empty() ? "/basePath" : "/host",
                               loc(r.get("host") ? *r.get("host") : r, *main_)));
    if (schemes.size() > 1)
      note(loc(*r.get("schemes"), *main_), "/schemes",
           "schemes " + text::join(schemes, ", ") + ": gw connects to the upstream with " + scheme);
    return out;
  }

  // ---- security
  void read_schemes(const Node& r) {
    const Node* defs = nullptr;
    std::string pointer;
    if (swagger_) {
      defs = r.get("securityDefinitions");
      pointer = "/securityDefinitions";
    } else if (const Node* c = r.get("components")) {
      defs = c->get("securitySchemes");
      pointer = "/components/securitySchemes";
    }
    if (!defs || !defs->is_object()) return;
    for (const auto& [name, raw] : defs->members) {
      const std::string p = pointer + "/" + text::pointer_token(name);
      auto [node, in] = resolve(raw, *main_, p);
      if (!node) continue;
      Scheme s;
      const std::string type = node->str("type");
      PolicySpec policy;
      policy.loc = loc(raw, *main_);
      policy.kind = Field<std::string>{"", loc(*node, *in), true};
      if (type == "apiKey") {
        const std::string where = node->str("in");
        if (where != "header" && where != "query" && where != "cookie") {
          s.why_not = "apiKey in " + text::quote(where);
        } else {
          policy.kind.value = "api_key";
          policy.config[where] = node->str("name");
        }
      } else if (type == "http" || (swagger_ && type == "basic")) {
        const std::string scheme = swagger_ ? "basic" : text::lower(node->str("scheme"));
        if (scheme == "basic") {
          policy.kind.value = "basic";
        } else if (scheme == "bearer") {
          policy.kind.value = "jwt";
          if (const std::string fmt = node->str("bearerFormat"); !fmt.empty())
            policy.config["bearer_format"] = fmt;
          if (!text::iequals(node->str("bearerFormat", "JWT"), "JWT"))
            loss("openapi.approximated", loc(*node, *in), p,
                 "bearer tokens of format " + text::quote(node->str("bearerFormat")) +
                     " are checked as JWTs");
        } else {
          s.why_not = "HTTP authentication scheme " + text::quote(scheme);
        }
      } else if (type == "oauth2") {
        policy.kind.value = "jwt";
        loss("openapi.approximated", loc(*node, *in), p,
             "OAuth 2.0 scheme " + text::quote(name) +
                 ": gw does not run OAuth flows; it checks access tokens as JWTs",
             "give the jwt policy its key source (jwks_url or a key) and issuer");
      } else if (type == "openIdConnect") {
        policy.kind.value = "jwt";
        policy.config["openid_connect_url"] = node->str("openIdConnectUrl");
      } else if (type == "mutualTLS") {
        s.why_not = "mutual TLS (gw terminates plain HTTP)";
      } else {
        s.why_not = "security scheme type " + text::quote(type);
      }
      if (s.why_not.empty()) {
        policy.imported = true;
        s.policy = policy.name = scheme_policy_name(name, policy, loc(raw, *main_), p);
        pending_policies_[s.policy] = std::move(policy);
      } else {
        s.policy.clear();
      }
      schemes_[name] = std::move(s);
    }
  }

  /// The policy name for security scheme `scheme`: its sanitised name, unless another scheme of
  /// this document sanitises to the same name (a warning) or an earlier document imported a
  /// different policy under it. A TOML policy of that name keeps it: it replaces the scheme.
  std::string scheme_policy_name(const std::string& scheme, const PolicySpec& policy,
                                 const SourceLoc& at, const std::string& pointer) {
    const std::string want = sanitize_name(scheme);
    if (pending_policies_.count(want)) {
      std::string other;
      for (const auto& [n, s] : schemes_)
        if (s.policy == want) other = n;
      const std::string name = unused_policy_name(want + "-", 2);
      loss("openapi.name-collision", at, pointer,
           "security schemes " + text::quote(other) + " and " + text::quote(scheme) +
               " both make policy " + text::quote(want) + "; this one is policy " +
               text::quote(name));
      return name;
    }
    for (const auto& existing : doc_.policies)
      if (existing.name == want && existing.imported &&
          !(existing.kind.value == policy.kind.value && existing.config == policy.config)) {
        const std::string name = unused_policy_name(want + "-", 2);
        note(at, pointer,
             "policy " + text::quote(want) + " is an earlier document's different scheme; " +
                 text::quote(scheme) + " here is policy " + text::quote(name));
        return name;
      }
    return want;
  }

  /// The policies a route gets for its security requirements, or nullopt when a required scheme
  /// cannot be enforced (an error: the route would be unprotected).
  std::optional<std::vector<std::string>> security(const Node& reqs, const Loaded& in,
                                                   const std::string& pointer,
                                                   const std::string& route) {
    if (!reqs.is_array()) return std::vector<std::string>{};
    if (reqs.items.empty()) return std::vector<std::string>{}; // `security: []`: public
    nlohmann::json options = nlohmann::json::array();
    bool anonymous = false, scopes = false;
    std::size_t unenforceable_alternatives = 0;
    for (std::size_t i = 0; i < reqs.items.size(); ++i) {
      const Node& req = reqs.items[i];
      const std::string p = pointer + "/" + std::to_string(i);
      if (!req.is_object()) continue;
      if (req.members.empty()) {
        anonymous = true; // `{}`: anonymous access allowed
        options.push_back({{"policies", nlohmann::json::array()}});
        continue;
      }
      nlohmann::json names = nlohmann::json::array(), scope_list = nlohmann::json::array();
      const Scheme* unenforceable = nullptr;
      for (const auto& [name, sc] : req.members) {
        auto it = schemes_.find(name);
        if (it == schemes_.end()) {
          error("openapi.unknown-scheme", loc(req, in), p + "/" + text::pointer_token(name),
                "security requirement names unknown scheme " + text::quote(name));
          return std::nullopt;
        }
        if (it->second.policy.empty()) unenforceable = &it->second;
      }
      if (unenforceable) {
        // Dropping an alternative only removes a way in; with none left the route would be open.
        if (++unenforceable_alternatives == reqs.items.size()) {
          error("openapi.unsupported-security", loc(req, in), p,
                "operation " + text::quote(route) + " requires " + unenforceable->why_not +
                    ", which gw cannot enforce; the route would be unprotected",
                "protect it with x-gw-policies and drop the requirement, or keep this API off the "
                "gateway");
          return std::nullopt;
        }
        loss("openapi.dropped", loc(req, in), p,
             "security alternative " + std::to_string(i + 1) + " of " + text::quote(route) +
                 " needs " + unenforceable->why_not +
                 ", which gw cannot enforce; callers must use another alternative");
        continue;
      }
      for (const auto& [name, sc] : req.members) {
        auto it = schemes_.find(name);
        used_policies_.insert(it->second.policy);
        names.push_back(it->second.policy);
        for (const auto& s : sc.items) {
          scope_list.push_back(s.text);
          scopes = true;
        }
      }
      nlohmann::json opt = {{"policies", names}};
      if (!scope_list.empty()) opt["scopes"] = scope_list;
      options.push_back(std::move(opt));
    }
    if (options.size() == 1 && !anonymous && !scopes) {
      std::vector<std::string> out;
      for (const auto& n : options[0]["policies"])
        out.push_back(n.get<std::string>());
      return out;
    }
    // Alternatives (OR), scopes or anonymous access: one `any_of` policy, shared by every route
    // with the same requirements.
    return std::vector<std::string>{generated_policy(
        "any_of", nlohmann::json{{"options", std::move(options)}}, "security-", loc(reqs, in))};
  }

  // ---- paths and operations
  void path_item(const std::string& key, const Node& raw) {
    const std::string p = "/paths/" + text::pointer_token(key);
    auto [item, in] = resolve(raw, *main_, p);
    if (!item || !item->is_object()) return;
    if (key.empty() || key[0] != '/') {
      error("openapi.bad-path", loc(raw, *main_), p,
            "path " + text::quote(key) + " does not start with \"/\"");
      return;
    }
    check_extensions(*item, *in, p, Level::path_item);
    const Extensions ext = extensions(*item, *in, root_ext_);
    std::vector<Server> path_servers = servers(item->get("servers"), *in, p + "/servers");
    for (const auto m : kMethods) {
      const Node* op = item->get(m);
      if (!op || !op->is_object()) continue;
      operation(key, std::string(m), *op, *in, p + "/" + std::string(m), ext,
                path_servers.empty() ? root_servers_ : path_servers);
    }
  }

  /// An operation of a path item read from `in`.
  void operation(const std::string& path, const std::string& method, const Node& op,
                 const Loaded& in, const std::string& pointer, const Extensions& parent,
                 const std::vector<Server>& inherited) {
    ++summary_.operations;
    check_extensions(op, in, pointer, Level::operation);
    const Extensions ext = extensions(op, in, parent);
    const SourceLoc op_loc = loc(op, in);
    if (ext.ignore && ext.ignore->text == "true") {
      note(op_loc, pointer,
           "x-gw-ignore: " + text::quote(to_upper(method) + " " + path) + " is not routed");
      return;
    }
    std::vector<Server> op_servers = servers(op.get("servers"), in, pointer + "/servers");
    const std::vector<Server>& svs = op_servers.empty() ? inherited : op_servers;
    Server none;
    none.missing = true;
    none.loc = op_loc;

    RouteSpec r;
    r.loc = op_loc;
    r.imported = true;
    // Name: x-gw-name, operationId, or METHOD-path; collisions get a suffix and a warning.
    std::string name;
    SourceLoc name_loc = op_loc;
    if (ext.name) {
      name = ext.name->text;
      name_loc = ext.name.loc();
    } else if (const Node* id = op.get("operationId")) {
      name = sanitize_name(id->text);
      name_loc = loc(*id, in);
      if (name != id->text)
        note(name_loc, pointer + "/operationId",
             "operationId " + text::quote(id->text) + " becomes route name " + text::quote(name));
    } else {
      std::string synth = method + path; // "get/pets/{id}" -> "get-pets-id"
      std::replace(synth.begin(), synth.end(), '/', '-');
      name = sanitize_name(synth);
    }
    if (!names_.insert(name).second) {
      std::string unique;
      for (int n = 2;; ++n)
        if (names_.insert(unique = name + "-" + std::to_string(n)).second) break;
      loss("openapi.name-collision", op_loc, pointer,
           "route name " + text::quote(name) + " is taken; this operation is " +
               text::quote(unique));
      name = unique;
    }
    r.name = Field<std::string>{name, name_loc, true};
    r.methods =
        Field<StringList>{{Field<std::string>{to_upper(method), op_loc, true}}, op_loc, true};

    // Upstream: x-gw-upstream, else the server's. Set per server below.
    if (ext.upstream) named_upstreams_.emplace(ext.upstream->text, ext.upstream);
    if (ext.timeout) r.timeout = Field<std::string>{ext.timeout->text, ext.timeout.loc(), true};
    if (ext.retries)
      r.retries =
          Field<std::int64_t>{std::atoll(ext.retries->text.c_str()), ext.retries.loc(), true};
    if (ext.max_body) r.max_body = Field<std::string>{ext.max_body->text, ext.max_body.loc(), true};
    if (ext.hosts && ext.hosts->is_array()) {
      r.hosts.set = true;
      r.hosts.loc = ext.hosts.loc();
      for (const auto& h : ext.hosts->items)
        r.hosts.value.push_back(Field<std::string>{h.text, loc(h, *ext.hosts.in), true});
    }

    // Security, then x-gw-policies, then x-gw-rate-limit: authentication runs first.
    const bool own_security = op.get("security") != nullptr;
    const Node* reqs = own_security ? op.get("security") : root_security_;
    if (reqs) {
      const Loaded& reqs_in = own_security ? in : *main_;
      auto pols =
          security(*reqs, reqs_in, own_security ? pointer + "/security" : "/security", name);
      if (!pols) return; // reported: the route is not created unprotected
      r.policies.set = true;
      r.policies.loc = loc(*reqs, reqs_in);
      for (const auto& pname : *pols)
        r.policies.value.push_back(Field<std::string>{pname, r.policies.loc, true});
    }
    if (ext.policies && ext.policies->is_array()) {
      r.policies.set = true;
      if (!r.policies.loc.line) r.policies.loc = ext.policies.loc();
      for (const auto& pn : ext.policies->items)
        r.policies.value.push_back(Field<std::string>{pn.text, loc(pn, *ext.policies.in), true});
    }
    if (ext.rate_limit) {
      const std::string pname = rate_limit_policy(ext.rate_limit);
      r.policies.set = true;
      r.policies.value.push_back(Field<std::string>{pname, ext.rate_limit.loc(), true});
    }
    if (const Node* cb = op.get("callbacks"); cb && cb->is_object() && !cb->members.empty())
      note(loc(*cb, in), pointer + "/callbacks",
           "callbacks are requests the API sends, not routes");

    // One route per distinct server base path, so every server stays reachable: the first keeps
    // the name, the N-th server's route is NAME:N. Servers repeating an earlier base path (other
    // environments of the same API) cannot be told apart by the request; they are reported.
    std::vector<std::string> bases;
    for (std::size_t i = 0; i < std::max<std::size_t>(svs.size(), 1); ++i) {
      const Server& sv = svs.empty() ? none : svs[i];
      if (sv.bad) continue;
      if (std::find(bases.begin(), bases.end(), sv.base) != bases.end()) {
        upstream_for(sv, op, in, pointer); // defined, for x-gw-upstream or editing
        if (reported_servers_.insert(sv.pointer).second)
          loss("openapi.approximated", sv.loc, sv.pointer,
               "server " + text::quote(sv.url) +
                   " has the same base path as an earlier server; its operations go to the first",
               "point routes at it with x-gw-upstream, or import it separately with --upstream");
        continue;
      }
      bases.push_back(sv.base);
      RouteSpec ri = i + 1 < svs.size() ? r : std::move(r);
      if (bases.size() > 1) {
        ri.name.value += ":" + std::to_string(i + 1);
        if (!names_.insert(ri.name.value).second)
          error("openapi.name-collision", op_loc, pointer,
                "route name " + text::quote(ri.name.value) + " is taken twice");
      }
      const std::string full = sv.base + path;
      (full.find('{') != std::string::npos ? ri.template_ : ri.path) =
          Field<std::string>{full, op_loc, true};
      if (ext.upstream)
        ri.upstream = Field<std::string>{ext.upstream->text, ext.upstream.loc(), true};
      else
        ri.upstream = Field<std::string>{upstream_for(sv, op, in, pointer), sv.loc, true};
      doc_.routes.push_back(std::move(ri));
      ++summary_.routes;
    }
  }

  /// A scalar as the JSON value it stands for (numbers keep their fraction).
  static nlohmann::json scalar_json(const Node& v) {
    switch (v.kind) {
    case Node::Kind::number: {
      std::int64_t i = 0;
      const char* end = v.text.data() + v.text.size();
      if (auto [p, ec] = std::from_chars(v.text.data(), end, i); ec == std::errc{} && p == end)
        return i;
      return std::strtod(v.text.c_str(), nullptr);
    }
    case Node::Kind::boolean:
      return v.text == "true";
    case Node::Kind::null:
      return nullptr;
    default:
      return v.text;
    }
  }

  std::string rate_limit_policy(const Located& at) {
    const Node& n = *at;
    nlohmann::json cfg = nlohmann::json::object();
    if (n.is_object()) {
      for (const auto& [k, v] : n.members)
        cfg[k] = scalar_json(v); // as written: the policy's own checks judge a value like 2.5
    } else {
      cfg["rate"] = n.text;
    }
    return generated_policy("rate_limit", std::move(cfg), "rate-limit-", at.loc());
  }

  /// A policy the import makes up (any_of for security alternatives, rate_limit): one per
  /// distinct configuration, shared with an earlier document's identical one, else named
  /// PREFIX-N with the first N no other policy uses.
  std::string generated_policy(const std::string& kind, nlohmann::json config,
                               const std::string& prefix, const SourceLoc& at) {
    const std::string key = kind + " " + config.dump();
    if (auto it = generated_.find(key); it != generated_.end()) return it->second;
    std::string name;
    for (const auto& existing : doc_.policies)
      if (existing.imported && existing.kind.value == kind && existing.config == config)
        name = existing.name;
    if (name.empty()) {
      name = unused_policy_name(prefix, 1);
      PolicySpec p;
      p.name = name;
      p.loc = at;
      p.kind = Field<std::string>{kind, at, true};
      p.config = std::move(config);
      p.imported = true;
      pending_policies_[name] = std::move(p);
    }
    used_policies_.insert(name);
    generated_[key] = name;
    return name;
  }

  bool policy_taken(const std::string& name) const {
    return pending_policies_.count(name) ||
           std::any_of(doc_.policies.begin(), doc_.policies.end(),
                       [&](const PolicySpec& p) { return p.name == name; });
  }
  /// PREFIX + N for the first N from `first` that neither this import nor a spec loaded before
  /// it uses.
  std::string unused_policy_name(const std::string& prefix, int first) const {
    for (int n = first;; ++n)
      if (std::string name = prefix + std::to_string(n); !policy_taken(name)) return name;
  }

  /// The upstream for a server: one per distinct server host (and port); a relative server gets
  /// "default", which needs --upstream default=URL.
  std::string upstream_for(const Server& s, const Node& op, const Loaded& in,
                           const std::string& pointer) {
    std::string name =
        s.host.empty()
            ? "default"
            : sanitize_name(s.host +
                            (s.port == 80 || s.port == 443 ? "" : "-" + std::to_string(s.port)));
    auto& u = upstreams_[name];
    if (u.name.empty()) {
      u.name = name;
      u.server = s;
      u.op = &op;
      u.pointer = s.missing ? pointer : s.pointer;
      u.in = &in;
    }
    return name;
  }

  void finish_upstreams() {
    std::map<std::string, std::string> overrides(opts_.upstreams.begin(), opts_.upstreams.end());
    for (const auto& [name, url] : overrides)
      if (!upstreams_.count(name) && !named_upstreams_.count(name)) {
        std::vector<std::string> known;
        for (const auto& [n, _] : upstreams_)
          known.push_back(n);
        diags_.error("openapi.unknown-upstream", SourceLoc{main_->file->name, 0, 0},
                     "--upstream " + name + ": no server or x-gw-upstream uses that name" +
                         (known.empty() ? "" : " (upstreams: " + text::join(known, ", ") + ")"));
      }
    // --upstream may also define an upstream that only x-gw-upstream names.
    for (const auto& [name, url] : overrides)
      if (!upstreams_.count(name) && named_upstreams_.count(name)) {
        auto& u = upstreams_[name];
        u.name = name;
        u.op = named_upstreams_[name].node;
        u.in = named_upstreams_[name].in;
      }
    for (auto& [name, u] : upstreams_) {
      UpstreamSpec spec;
      spec.name = name;
      spec.loc = u.server.loc.line ? u.server.loc : loc(*u.op, *u.in);
      std::string address;
      if (auto it = overrides.find(name); it != overrides.end()) {
        Server o = parse_server(it->second, "", spec.loc);
        if (o.host.empty()) {
          diags_.error("openapi.bad-upstream", SourceLoc{main_->file->name, 0, 0},
                       "--upstream " + name + "=" + it->second + ": not an http://host:port URL");
          continue;
        }
        address = o.address();
      } else if (const UpstreamSpec* toml = defined_elsewhere(name)) {
        // A TOML upstream of the same name replaces this one: that is how imported APIs get
        // their real endpoints.
        note(toml->loc, u.pointer,
             "upstream " + text::quote(name) + " replaces " +
                 (u.server.url.empty() ? std::string("the document's missing server")
                                       : "server " + text::quote(u.server.url)) +
                 " of " + std::string(main_->file->name));
        continue;
      } else if (u.server.host.empty()) {
        // One error for the server, not one per route that uses it.
        // Only this document's routes: TOML routes and earlier imports may use the name too.
        const auto mine = doc_.routes.begin() + static_cast<std::ptrdiff_t>(first_route_);
        const auto kept = std::remove_if(
            mine, doc_.routes.end(), [&](const RouteSpec& r) { return r.upstream.value == name; });
        const auto users = static_cast<std::size_t>(doc_.routes.end() - kept);
        doc_.routes.erase(kept, doc_.routes.end());
        summary_.routes -= users;
        diags_
            .error("openapi.no-host", spec.loc,
                   (u.server.missing
                        ? "the document has no servers, so its routes have no upstream host"
                        : "server " + text::quote(u.server.url) + " is relative: it has no host") +
                       " (" + std::to_string(users) + " operation" + (users == 1 ? "" : "s") + ")")
            .with_hint("give one: --upstream " + name + "=http://HOST:PORT, an [upstreams." + name +
                       "] in a TOML spec loaded alongside, or x-gw-upstream");
        continue;
      } else {
        address = u.server.address();
        if (u.server.scheme == "https")
          loss("openapi.approximated", spec.loc, u.pointer,
               "server " + text::quote(u.server.url) +
                   " uses HTTPS; gw connects to upstreams with plain HTTP",
               "use --upstream " + name + "=http://HOST:PORT for a plain-HTTP endpoint");
      }
      EndpointSpec ep;
      ep.address = Field<std::string>{address, spec.loc, true};
      ep.loc = spec.loc;
      spec.endpoints = Field<std::vector<EndpointSpec>>{{ep}, spec.loc, true};
      spec.imported = true;
      // The same upstream from another document is not repeated.
      bool dup = false;
      for (const auto& existing : doc_.upstreams)
        dup = dup || (existing.name == name && existing.endpoints.value.size() == 1 &&
                      existing.endpoints.value[0].address.value == address);
      if (!dup) {
        doc_.upstreams.push_back(std::move(spec));
        ++summary_.upstreams;
      }
    }
    for (auto& [name, p] : pending_policies_) {
      if (!used_policies_.count(name)) continue; // schemes no operation requires stay out
      bool dup = false;
      for (const auto& existing : doc_.policies) {
        if (existing.name != name) continue;
        if (!existing.imported) {
          dup = true; // the TOML policy gives the scheme its keys, issuer or limits
          note(existing.loc, "",
               "policy " + text::quote(name) + " replaces security scheme " + text::quote(name) +
                   " of " + std::string(main_->file->name));
        } else if (existing.config == p.config && *existing.kind == *p.kind) {
          dup = true;
        }
      }
      if (!dup) {
        doc_.policies.push_back(std::move(p));
        ++summary_.policies;
      }
    }
  }

  static std::string to_upper(std::string s) {
    for (auto& c : s)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }

  struct UpstreamInfo {
    std::string name;
    Server server;
    const Node* op = nullptr;
    std::string pointer;
    const Loaded* in = nullptr;
  };

  SourceSet& sources_;
  Document& doc_;
  Diagnostics& diags_;
  const OpenApiOptions& opts_;
  ImportSummary& summary_;
  std::size_t first_route_ = 0; // doc_.routes before this document: not ours to remove
  std::map<std::string, Loaded> docs_;
  Loaded* main_ = nullptr;
  fs::path root_dir_;
  bool swagger_ = false;
  Extensions root_ext_;
  std::vector<Server> root_servers_;
  const Node* root_security_ = nullptr;
  std::map<std::string, Scheme> schemes_;
  std::map<std::string, PolicySpec> pending_policies_;
  std::set<std::string> used_policies_;
  std::map<std::string, std::string> generated_; // "KIND CONFIG" -> policy name
  std::map<std::string, UpstreamInfo> upstreams_;
  std::map<std::string, Located> named_upstreams_; // x-gw-upstream names
  std::set<std::string> names_, reported_servers_;
};

} // namespace

std::span<const std::string_view> openapi_extensions() {
  return kExtensions;
}

bool looks_like_openapi(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
    ++i;
  if (text.substr(i, 3) == "\xEF\xBB\xBF") i += 3;
  if (i < text.size() && text[i] == '{') return true; // JSON: a TOML file never starts with '{'
  // YAML: a top-level `openapi:` or `swagger:` key (TOML would write `openapi =`).
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = text.find('\n', pos);
    const std::string_view line =
        text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    for (auto key : {"openapi"sv, "swagger"sv, "\"openapi\""sv, "'openapi'"sv, "\"swagger\""sv})
      if (line.starts_with(key)) {
        std::size_t j = key.size();
        while (j < line.size() && line[j] == ' ')
          ++j;
        if (j < line.size() && line[j] == ':') return true;
      }
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return false;
}

void read_openapi(std::string name, std::string text, SourceSet& sources, Document& doc,
                  Diagnostics& diags, const OpenApiOptions& opts, ImportSummary* summary) {
  ImportSummary local;
  (summary ? *summary : local).source = name;
  if (text.size() > kMaxOpenApiBytes) {
    diags.error("spec.too-large", SourceLoc{name, 0, 0},
                "OpenAPI document of " + std::to_string(text.size()) + " bytes; the limit is " +
                    std::to_string(kMaxOpenApiBytes));
    return;
  }
  Importer(sources, doc, diags, opts, summary ? *summary : local)
      .run(std::move(name), std::move(text));
}

void read_openapi_file(const std::string& path, SourceSet& sources, Document& doc,
                       Diagnostics& diags, const OpenApiOptions& opts, ImportSummary* summary) {
  auto text = file::read_all(path, kMaxOpenApiBytes);
  if (!text) {
    const char* code = text.error().code == errc::too_large ? "spec.too-large" : "input.unreadable";
    diags.error(code, SourceLoc{path, 0, 0}, text.error().message);
    return;
  }
  read_openapi(path, std::move(*text), sources, doc, diags, opts, summary);
}

} // namespace gw::spec
