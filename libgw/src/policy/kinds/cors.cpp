// cors: Cross-Origin Resource Sharing (the Fetch standard's CORS protocol). A preflight is
// answered here before any other filter runs (browsers send it without credentials); other
// requests from an allowed origin get the CORS response fields, local replies included.
#include <algorithm>

#include "gw/policy/kinds.hpp"
#include "policy/fields.hpp"
#include "policy/kinds/rows.hpp"

namespace gw::policy {
namespace {

constexpr std::string_view kName = "cors";

constexpr std::string_view kSchema = R"json({
  "origins": {
    "description": "Allowed origins (\"https://app.example.com\"), or [\"*\"].",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "methods": {
    "description": "Allowed methods, upper case (default GET, HEAD, POST).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "headers": {
    "description": "Allowed request headers ([\"*\"]: any).",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "expose_headers": {
    "description": "Response headers the browser may read.",
    "type": ["string", "array"], "items": {"type": "string"}
  },
  "credentials": {
    "description": "Allow credentials (cookies); not with origins = [\"*\"].",
    "type": "boolean"
  },
  "max_age": {
    "description": "How long browsers may cache a preflight, e.g. \"10m\" (default).",
    "type": "string"
  }
})json";

Cors read(Fields& f, json*) {
  Cors c;
  if (auto v = f.strings("origins")) {
    for (const auto& o : *v) {
      if (o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        f.error("origins", "origin " + text::quote(o) + " must be \"*\" or scheme://host[:port]");
      else if (o != "*" && o.find('/', o.find("://") + 3) != std::string::npos)
        f.error("origins",
                "origin " + text::quote(o) + " has a path; origins are scheme://host[:port]");
      c.origins.push_back(text::lower(o));
    }
  } else {
    f.error("origins", "has no origins (\"https://app.example.com\", or \"*\")",
            "spec.missing-key");
  }
  c.methods = {"GET", "HEAD", "POST"};
  if (auto v = f.strings("methods")) {
    c.methods = *v;
    // Browsers send the method in upper case, and CORS compares it exactly.
    for (const auto& m : c.methods)
      if (m.empty() ||
          !std::all_of(m.begin(), m.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
        f.error("methods",
                "method " + text::quote(m) + " must be an upper-case method name, e.g. \"PUT\"");
  }
  if (auto v = f.strings("headers"))
    for (const auto& h : *v)
      c.headers.push_back(text::lower(h));
  if (auto v = f.strings("expose_headers"))
    for (const auto& h : *v)
      c.expose.push_back(text::lower(h));
  if (auto v = f.boolean("credentials")) c.credentials = *v;
  if (auto v = f.duration("max_age")) c.max_age = *v;
  if (c.credentials && std::find(c.origins.begin(), c.origins.end(), "*") != c.origins.end())
    f.error("credentials",
            "credentials = true cannot be combined with origin \"*\" (browsers refuse it)");
  return c;
}

bool origin_allowed(const Cors& c, std::string_view origin) {
  return std::any_of(c.origins.begin(), c.origins.end(),
                     [&](const std::string& o) { return o == "*" || text::iequals(o, origin); });
}

void cors_headers(const Cors& c, std::string_view origin, HeaderList& out) {
  const bool any = std::find(c.origins.begin(), c.origins.end(), "*") != c.origins.end();
  out.emplace_back("access-control-allow-origin",
                   std::string(any && !c.credentials ? std::string_view("*") : origin));
  out.emplace_back("vary", "origin");
  if (c.credentials) out.emplace_back("access-control-allow-credentials", "true");
  if (!c.expose.empty())
    out.emplace_back("access-control-expose-headers", text::join(c.expose, ", "));
}

class CorsFilter final : public Filter {
public:
  explicit CorsFilter(Cors s) : c_(std::move(s)) {}

  void contribute(RouteFacts& facts) const override { facts.answers_preflight = true; }

  Verdict on_request(FilterContext& ctx) const override {
    const RequestView& req = *ctx.request;
    const auto origin = req.header("origin");
    if (!origin) return Verdict::proceed();
    if (req.method() == "OPTIONS")
      if (auto method = req.header("access-control-request-method"))
        return Verdict::respond(preflight(req, *origin, *method));
    if (origin_allowed(c_, *origin)) cors_headers(c_, *origin, ctx.edits.response_add);
    return Verdict::proceed();
  }

private:
  /// The 204 that allows a preflight, or a 403.
  LocalReply preflight(const RequestView& req, std::string_view origin,
                       std::string_view method) const {
    LocalReply r;
    r.kind = wire::ErrorKind::forbidden;
    if (!origin_allowed(c_, origin) ||
        std::find(c_.methods.begin(), c_.methods.end(), method) == c_.methods.end()) {
      r.message = "CORS preflight refused: origin or method not allowed";
      return r;
    }
    if (auto asked = req.header("access-control-request-headers")) {
      const bool any = std::find(c_.headers.begin(), c_.headers.end(), "*") != c_.headers.end();
      std::string_view rest = *asked;
      while (!any && !rest.empty()) {
        const auto comma = rest.find(',');
        std::string_view h = rest.substr(0, comma);
        while (!h.empty() && h.front() == ' ')
          h.remove_prefix(1);
        while (!h.empty() && h.back() == ' ')
          h.remove_suffix(1);
        if (!h.empty() && std::none_of(c_.headers.begin(), c_.headers.end(),
                                       [&](const std::string& a) { return text::iequals(a, h); })) {
          r.message = "CORS preflight refused: header " + std::string(h) + " not allowed";
          return r;
        }
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    }
    r.status = 204;
    r.body = ""; // no content type: a 204 has no body
    cors_headers(c_, origin, r.headers);
    r.headers.emplace_back("access-control-allow-methods", text::join(c_.methods, ", "));
    if (auto asked = req.header("access-control-request-headers"); asked && !asked->empty())
      r.headers.emplace_back("access-control-allow-headers", std::string(*asked));
    r.headers.emplace_back("access-control-max-age", std::to_string(c_.max_age.count() / 1000));
    return r;
  }

  Cors c_;
};

std::optional<json> compile(const json& settings, const Context& ctx, Diagnostics& diags) {
  return compile_with<Cors>(kName, &read, settings, ctx, diags);
}

} // namespace

template <>
Result<Cors> parse<Cors>(std::string_view canonical, std::string_view policy) {
  return parse_with<Cors>(kName, &read, canonical, policy);
}

constexpr KindInfo kCorsKind{
    .name = kName,
    .phase = Phase::cors,
    .authenticates = false,
    .composite = false,
    .schema = kSchema,
    .compile = &compile,
    .build = &build_from<Cors, CorsFilter>,
    .needs_identity = nullptr,
    .references = nullptr,
    .one_per_route = true,
};

} // namespace gw::policy
