// kind = "ext_auth": forward authentication, as Envoy's ext_authz (HTTP service) and Traefik's
// ForwardAuth do it. Before a request goes upstream the gateway asks an authorization service:
// a GET to the policy's URL carrying the client headers the policy names and the request's
// method, URI, host, client address and id. A 2xx answer lets the request through, with the
// answer's headers the policy names copied onto the upstream request; any other answer goes to
// the client as the service wrote it (status, headers, body); a service that cannot answer in
// time fails closed (503) or open, as the policy says.
//
// The filter only builds the call and reads the reply: the proxy performs the call on its
// worker's HttpClient (upstream/http_client.hpp), so this file does no I/O.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/policy/kinds.hpp"
#include "gw/wire/http_rules.hpp"
#include "policy/fields.hpp"

namespace gw::policy {
namespace {

using namespace std::string_view_literals;

constexpr units::Millis kMaxTimeout{60'000};
constexpr std::uint64_t kMaxDenialBody = 16ULL << 20;

/// The fields every call carries, with the gateway's own values (a client's copies are not sent).
constexpr std::string_view kAlwaysSent[] = {"x-forwarded-method"sv, "x-forwarded-uri"sv,
                                            "x-forwarded-host"sv, "x-forwarded-for"sv,
                                            "x-request-id"sv};

struct ExtAuth {
  std::string host; // an IP literal (IPv6 without brackets)
  std::uint16_t port = 80;
  std::string authority; // the Host of the call: the URL's, as written
  std::string target = "/";
  std::vector<std::string> request_headers;               // lowercase
  std::vector<std::string> upstream_headers;              // lowercase
  std::optional<std::vector<std::string>> client_headers; // lowercase; nullopt: the default set
  std::string consumer_header;                            // "" = none
  units::Millis timeout{1000};
  bool fail_open = false;
  std::uint64_t max_body = 64 * 1024;
};

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return text::iequals(n, name); });
}

/// `url = "http://IP[:PORT]/PATH[?QUERY]"`.
void read_url(Fields& f, ExtAuth& a) {
  auto url = f.str("url");
  if (!url) {
    if (!f.has("url"))
      f.error("url", "has no url (\"http://127.0.0.1:9000/auth\"): the authorization service",
              "spec.missing-key");
    return;
  }
  const std::string_view u = *url;
  if (u.starts_with("https://")) {
    f.error("url", "url " + text::quote(u) +
                       ": https is not supported yet; ext_auth calls the service over plain "
                       "HTTP, so keep it on loopback or a private network");
    return;
  }
  if (!u.starts_with("http://")) {
    f.error("url", "url " + text::quote(u) + " must be \"http://IP:PORT/PATH\"");
    return;
  }
  std::string_view rest = u.substr(7);
  const auto end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "/"sv : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    f.error("url", "url " + text::quote(u) + " must not carry user information (\"user@\")");
    return;
  }
  if (target.find('#') != std::string_view::npos) {
    f.error("url", "url " + text::quote(u) + " must not have a fragment (\"#...\")");
    return;
  }
  // It becomes the call's request line: nothing there may split it.
  if (std::any_of(target.begin(), target.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b <= 0x20 || b >= 0x7f;
      })) {
    f.error("url", "url " + text::quote(u) +
                       " has spaces, control or non-ASCII characters in its path; "
                       "percent-encode them");
    return;
  }
  // IPv6 goes in brackets ("http://[::1]:9000/auth"); the port defaults to 80.
  std::string_view host = authority, port_text;
  bool v6 = false, good = !authority.empty();
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    v6 = true;
    good = close != std::string_view::npos &&
           (close + 1 == authority.size() ||
            (authority[close + 1] == ':' && close + 2 < authority.size()));
    if (good) {
      host = authority.substr(1, close - 1);
      if (close + 1 < authority.size()) port_text = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
    good = !port_text.empty();
  }
  unsigned port = 80;
  if (good && !port_text.empty()) {
    const auto* last = port_text.data() + port_text.size();
    const auto res = std::from_chars(port_text.data(), last, port);
    good = res.ec == std::errc{} && res.ptr == last && port > 0 && port < 65536;
  }
  unsigned char ip[16];
  // An IP literal, because a name would need a DNS lookup on the request path.
  if (!good || ::inet_pton(v6 ? AF_INET6 : AF_INET, std::string(host).c_str(), ip) != 1) {
    f.error("url", "url " + text::quote(u) +
                       ": the host must be an IP address with an optional port "
                       "(\"http://127.0.0.1:9000/auth\", \"http://[::1]:9000/auth\"), not a host "
                       "name: gw does no DNS lookups on the request path");
    return;
  }
  a.host = host;
  a.port = static_cast<std::uint16_t>(port);
  a.authority = authority;
  a.target = target.starts_with('?') ? "/" + std::string(target) : std::string(target);
}

/// A list of header names (one name or a list), lowercase, without duplicates.
std::vector<std::string> header_names(Fields& f, std::string_view key) {
  std::vector<std::string> out;
  auto names = f.strings(key);
  if (!names) return out;
  for (const auto& n : *names) {
    if (!text::is_token(n)) {
      f.error(key, text::quote(n) + " is not a header name");
      continue;
    }
    if (!contains(out, n)) out.push_back(text::lower(n));
  }
  return out;
}

ExtAuth read_ext_auth(Fields& f) {
  ExtAuth a;
  read_url(f, a);

  a.request_headers = header_names(f, "request_headers");
  for (const auto& n : a.request_headers) {
    if (n == "host")
      f.error("request_headers",
              "\"host\" is not sent as is: the service gets the client's Host as "
              "x-forwarded-host (and its own host in Host)");
    else if (managed_by_proxy(n))
      f.error("request_headers",
              text::quote(n) + " is managed by the proxy and is never sent to the service");
    else if (std::find(std::begin(kAlwaysSent), std::end(kAlwaysSent), n) != std::end(kAlwaysSent))
      f.error("request_headers",
              text::quote(n) + " is always sent, with the gateway's own value; leave it out");
  }

  a.upstream_headers = header_names(f, "upstream_headers");
  for (const auto& n : a.upstream_headers)
    if (managed_by_proxy(n))
      f.error("upstream_headers",
              text::quote(n) + " is managed by the proxy and cannot be set here");

  if (f.get("client_headers") != nullptr) { // get(): listed among the keys it takes
    a.client_headers = header_names(f, "client_headers");
    for (const auto& n : *a.client_headers)
      if (managed_by_proxy(n))
        f.error("client_headers",
                text::quote(n) + " is managed by the proxy and is never passed to the client");
  }

  if (auto v = f.str("consumer_header")) {
    if (!v->empty() && !text::is_token(*v))
      f.error("consumer_header", text::quote(*v) + " is not a header name");
    else if (managed_by_proxy(*v))
      f.error("consumer_header", text::quote(*v) + " is managed by the proxy");
    a.consumer_header = text::lower(*v);
  }

  if (auto v = f.duration("timeout")) {
    if (v->count() <= 0 || *v > kMaxTimeout)
      f.error("timeout",
              "timeout must be more than 0 and at most " + units::format_duration(kMaxTimeout));
    a.timeout = *v;
  }

  if (auto v = f.str("on_error")) {
    if (*v == "allow")
      a.fail_open = true;
    else if (*v != "deny")
      f.error("on_error", "on_error must be \"deny\" (fail closed: 503) or \"allow\" (fail open)");
  }

  // A size ("64KiB") or a number of bytes, as the route's max_body.
  if (const json* v = f.get("max_body")) {
    std::optional<std::uint64_t> n;
    if (v->is_number_integer() && v->get<std::int64_t>() > 0)
      n = static_cast<std::uint64_t>(v->get<std::int64_t>());
    else if (v->is_string())
      if (auto s = units::parse_size(v->get<std::string>())) n = *s;
    if (!n || *n == 0 || *n > kMaxDenialBody)
      f.error("max_body", "max_body must be a size from 1 byte to " +
                              units::format_size(kMaxDenialBody) + " (\"64KiB\", or bytes)");
    else
      a.max_body = *n;
  }
  return a;
}

std::optional<ExtAuth> read(const json& j, Fields& f) {
  f.kind_ = "ext_auth";
  if (!j.is_object()) {
    f.error("", "settings must be a table");
    return std::nullopt;
  }
  ExtAuth a = read_ext_auth(f);
  f.finish();
  if (!f.ok()) return std::nullopt;
  return a;
}

/// The values of the answer's field `name`, joined as one field line would carry them
/// (RFC 9110 §5.3), or nullopt when it has none.
std::optional<std::string> joined(const HeaderList& headers, std::string_view name) {
  std::optional<std::string> out;
  for (const auto& [n, v] : headers) {
    if (n != name) continue;
    if (out)
      *out += ", " + v;
    else
      out = v;
  }
  return out;
}

class ExtAuthFilter final : public Filter {
public:
  ExtAuthFilter(std::string policy, ExtAuth s) : policy_(std::move(policy)), s_(std::move(s)) {}

  // What the service asserts reaches the upstream only from the service: the proxy drops a
  // client's own copies of those fields on every request of the route.
  void contribute(RouteFacts& facts) const override {
    for (const auto& n : s_.upstream_headers)
      if (!contains(facts.protect, n)) facts.protect.push_back(n);
  }

  Verdict on_request(FilterContext& ctx) const override {
    // Dropped here too, so that a request let through by on_error = "allow", or by an answer
    // that lacks a field, never carries the client's forged value of it.
    for (const auto& n : s_.upstream_headers)
      if (!contains(ctx.edits.drop, n)) ctx.edits.drop.push_back(n);

    const RequestView& req = *ctx.request;
    HttpCall call;
    call.host = s_.host;
    call.port = s_.port;
    call.authority = s_.authority;
    call.method = "GET";
    call.target = s_.target;
    call.timeout = s_.timeout;
    call.max_body = static_cast<std::size_t>(s_.max_body);
    std::string uri(req.path());
    if (!req.query().empty()) uri.append("?").append(req.query());
    call.headers.reserve(kAlwaysSentCount + s_.request_headers.size());
    call.headers.emplace_back("x-forwarded-method", req.method());
    call.headers.emplace_back("x-forwarded-uri", std::move(uri));
    call.headers.emplace_back("x-forwarded-host", req.host());
    call.headers.emplace_back("x-forwarded-for", req.client_ip());
    call.headers.emplace_back("x-request-id", req.request_id());
    if (!s_.request_headers.empty())
      req.for_each_header([&](std::string_view name, std::string_view value) {
        if (contains(s_.request_headers, name)) call.headers.emplace_back(text::lower(name), value);
      });
    return Verdict::await(std::move(call));
  }

  Verdict resume(FilterContext& ctx, IoResult&& result) const override {
    auto* reply = std::get_if<HttpReply>(&result);
    if (!reply) return failed(ctx, "the proxy answered the call with something other than HTTP");
    if (!reply->ok) return failed(ctx, reply->error);
    // 1xx never reaches a filter (the client reads past interim answers); past 599 is not HTTP.
    if (reply->status < 200 || reply->status > 599)
      return failed(ctx, "the service answered with status " + std::to_string(reply->status));
    if (reply->status < 300) return allowed(ctx, *reply);
    return Verdict::respond(denial(std::move(*reply)));
  }

private:
  static constexpr std::size_t kAlwaysSentCount = std::size(kAlwaysSent);

  Verdict allowed(FilterContext& ctx, const HttpReply& reply) const {
    std::vector<std::pair<std::string, std::string>> copies;
    for (const auto& n : s_.upstream_headers)
      if (auto v = joined(reply.headers, n)) {
        // Sent upstream as they are: a value that could split the header block is the
        // service's fault, and an answer that cannot be trusted.
        if (!valid_header_value(*v))
          return failed(ctx, "the service's " + text::quote(n) + " holds control characters");
        copies.emplace_back(n, std::move(*v));
      }
    for (auto& [n, v] : copies)
      ctx.edits.set_header(n, std::move(v));
    // The service vouched for the caller; it names the consumer when the policy says where.
    ctx.identity.authenticated = true;
    if (!s_.consumer_header.empty())
      for (const auto& [n, v] : reply.headers)
        if (n == s_.consumer_header && !v.empty() && valid_header_value(v)) {
          ctx.identity.consumer = v;
          break;
        }
    return Verdict::proceed();
  }

  LocalReply denial(HttpReply&& reply) const {
    LocalReply r;
    // The kind names the denial in the access log; the client gets the service's own status.
    r.kind = reply.status == 401   ? wire::ErrorKind::unauthorized
             : reply.status == 429 ? wire::ErrorKind::rate_limited
                                   : wire::ErrorKind::forbidden;
    r.status = reply.status;
    r.message = "denied by the authorization service";
    r.detail = "ext_auth " + text::quote(policy_) + ": HTTP " + std::to_string(reply.status) +
               " from " + s_.authority;
    for (auto& [n, v] : reply.headers) {
      if (n == "content-type") {
        if (r.content_type.empty()) r.content_type = v;
        continue;
      }
      // Framing and hop-by-hop fields describe the service's connection, not the reply.
      if (managed_by_proxy(n)) continue;
      if (s_.client_headers && !contains(*s_.client_headers, n)) continue;
      r.headers.emplace_back(n, std::move(v));
    }
    r.body = std::move(reply.body);
    return r;
  }

  Verdict failed(FilterContext& ctx, const std::string& why) const {
    if (ctx.counters) ++ctx.counters->ext_auth_errors;
    ctx.note("ext_auth " + text::quote(policy_) + ": " + why +
                 (s_.fail_open ? "; letting the request through (on_error = \"allow\")"
                               : "; refusing it with 503 (on_error = \"deny\")"),
             true);
    if (s_.fail_open) return Verdict::proceed();
    LocalReply r;
    r.kind = wire::ErrorKind::policy_unavailable;
    r.message = "the authorization service is unavailable";
    r.detail = "ext_auth " + text::quote(policy_) + ": " + why;
    return Verdict::respond(std::move(r));
  }

  std::string policy_;
  ExtAuth s_;
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  Fields f(settings, ctx, &diags);
  if (!read(settings, f)) return std::nullopt;
  return settings;
}

Result<std::shared_ptr<const Filter>> build(const BuildContext& ctx) {
  const json j = json::parse(ctx.settings, nullptr, false);
  Context where;
  where.policy = ctx.policy;
  Fields f(j, where, nullptr);
  auto s = read(j, f);
  if (!s)
    return fail(errc::invalid_argument,
                f.first_error().empty() ? "bad ext_auth settings" : f.first_error());
  return std::make_shared<const ExtAuthFilter>(std::string(ctx.policy), std::move(*s));
}

// The JSON Schema of the kind's keys: specs/gw.schema.json's policy definition declares the same
// keys, with the same types and limits, each described there as "ext_auth: ...".
constexpr std::string_view kSchema = R"json({
  "url": {
    "description": "The authorization service, \"http://IP:PORT/PATH\", called with GET (an IP address: gw does no DNS lookups on the request path; https is not supported yet).",
    "type": "string", "pattern": "^http://", "examples": ["http://127.0.0.1:9000/auth"]
  },
  "request_headers": {
    "description": "Client headers sent to the service (x-forwarded-method, x-forwarded-uri, x-forwarded-host, x-forwarded-for and x-request-id always are).",
    "type": ["string", "array"], "items": {"type": "string"}, "examples": [["authorization", "cookie"]]
  },
  "upstream_headers": {
    "description": "Headers of the service's 2xx answer set on the upstream request; a client's own copies are never forwarded.",
    "type": ["string", "array"], "items": {"type": "string"}, "examples": [["x-user", "x-user-roles"]]
  },
  "client_headers": {
    "description": "Headers of a denial (any answer but 2xx) passed to the client (default: all but hop-by-hop and framing fields).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "consumer_header": {
    "description": "Header of the service's 2xx answer that names the consumer (default none): the access log's consumer, and who access control and consumer-keyed rate limits see.",
    "type": "string"
  },
  "timeout": {
    "description": "How long the call to the service may take, connecting included, e.g. \"300ms\" (default 1s, at most 1m).",
    "type": "string"
  },
  "on_error": {
    "description": "Deny (fail closed, 503 policy_unavailable; default) or allow (fail open) when the service cannot answer in time.",
    "type": "string", "enum": ["deny", "allow"]
  },
  "max_body": {
    "description": "Largest answer body read from the service (a denial's goes to the client); a longer one is an error (default 64KiB, at most 16MiB).",
    "type": ["string", "integer"], "pattern": "^[0-9]+(B|KB|MB|GB|KiB|MiB|GiB)?$", "minimum": 1, "maximum": 16777216, "examples": ["64KiB", 65536]
  }
})json";

} // namespace

extern const KindInfo kExtAuthKind;
constinit const KindInfo kExtAuthKind{
    .name = "ext_auth",
    .phase = Phase::authenticate,
    // A 2xx answer identifies the caller (and names it with consumer_header).
    .authenticates = true,
    .composite = false,
    .schema = kSchema,
    .compile = compile,
    .build = build,
    .needs_identity = nullptr,
    .references = nullptr,
    .performs_io = true,
};

} // namespace gw::policy
