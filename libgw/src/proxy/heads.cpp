#include "heads.hpp"

#include <boost/beast/http/parser.hpp>
#include <charconv>

#include "gw/core/text.hpp"
#include "gw/uri/normalize.hpp"
#include "gw/wire/local_reply.hpp"

namespace gw::proxy {

using text::iequals;
using wire::ErrorKind;

namespace {

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(p - buf));
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

void fields(std::string& out, const policy::HeaderList& list) {
  for (const auto& [k, v] : list)
    field(out, k, v);
}

/// Writes a headers policy's set and add operations.
void append_ops(std::string& out, const policy::HeaderOps& ops) {
  fields(out, ops.set);
  fields(out, ops.add);
}

bool valid_host(std::string_view h) {
  for (const char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-._~!$&'()*+,;=:[]%").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::unexpected<HeadRefusal> refuse(ErrorKind k, std::string msg) {
  return std::unexpected(HeadRefusal{k, std::move(msg)});
}

/// The target: origin-form, or absolute-form whose authority replaces Host.
std::expected<void, HeadRefusal> read_target(const HeadRules& rules, RequestHead& h,
                                             std::string& pathbuf) {
  if (h.target.size() > rules.max_uri_bytes)
    return refuse(ErrorKind::uri_too_long, "the request target is longer than " +
                                               std::to_string(rules.max_uri_bytes) + " bytes");
  std::string_view origin = h.target;
  if (!h.target.empty() && h.target[0] != '/') {
    if (h.target == "*") {
      if (h.method_id != model::Method::OPTIONS)
        return refuse(ErrorKind::bad_request, "\"*\" is only a target for OPTIONS");
      return {}; // answered by answer_locally
    }
    if (h.method_id == model::Method::CONNECT)
      return refuse(ErrorKind::not_implemented, "CONNECT is not supported");
    const bool http_scheme = h.target.size() > 7 &&
                             (iequals(h.target.substr(0, 7), "http://") ||
                              (h.target.size() > 8 && iequals(h.target.substr(0, 8), "https://")));
    if (!http_scheme) return refuse(ErrorKind::bad_request, "malformed request target");
    auto parts = uri::split_url(h.target);
    if (!parts) return refuse(ErrorKind::bad_request, "malformed request target");
    const auto scheme_end = h.target.find("://") + 3;
    const auto auth_end = h.target.find_first_of("/?", scheme_end);
    h.absolute_host = std::string(h.target.substr(scheme_end, auth_end == std::string_view::npos
                                                                  ? std::string_view::npos
                                                                  : auth_end - scheme_end));
    h.host = h.absolute_host;
    h.absolute_target = std::move(parts->target);
    origin = h.absolute_target;
  }
  auto target = uri::parse_target(origin, pathbuf);
  if (!target)
    return refuse(ErrorKind::bad_request, "bad request target: " + target.error().message);
  h.path = target->path;
  h.query = target->query;
  return {};
}

} // namespace

void ConnectionTokens::add(std::string_view value) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    std::string_view t = value.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
      t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
      t.remove_suffix(1);
    if (iequals(t, "close"))
      close = true;
    else if (iequals(t, "keep-alive"))
      keep_alive = true;
    else if (!t.empty() && n < names.size())
      names[n++] = t;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool ConnectionTokens::lists(std::string_view name) const {
  for (std::size_t i = 0; i < n; ++i)
    if (iequals(names[i], name)) return true;
  return false;
}

bool hop_by_hop(http::field f, std::string_view name) {
  switch (f) {
  case http::field::connection:
  case http::field::keep_alive:
  case http::field::proxy_connection:
  case http::field::te:
  case http::field::trailer:
  case http::field::transfer_encoding:
  case http::field::upgrade:
  case http::field::proxy_authenticate:
  case http::field::proxy_authorization:
    return true;
  case http::field::unknown:
    return wire::is_hop_by_hop(name);
  default:
    return false;
  }
}

bool RequestHead::idempotent() const noexcept {
  using M = model::Method;
  return method_id == M::GET || method_id == M::HEAD || method_id == M::OPTIONS ||
         method_id == M::TRACE || method_id == M::PUT || method_id == M::DELETE;
}

std::expected<void, HeadRefusal> check_request_head(const RequestMessage& msg,
                                                    const HeadRules& rules, RequestHead& h,
                                                    std::string& pathbuf) {
  h.method = sv(msg.method_string());
  h.method_id = model::classify_method(h.method);
  h.head = h.method_id == model::Method::HEAD;
  h.target = sv(msg.target());
  h.version = msg.version();
  h.keep_alive = msg.keep_alive();
  Framing fr;
  int host_count = 0;
  std::string_view host_value, expect, xff;
  for (const auto& f : msg) {
    if (fr.take(f)) continue;
    switch (f.name()) {
    case http::field::host:
      ++host_count;
      host_value = sv(f.value());
      break;
    case http::field::expect:
      expect = sv(f.value());
      break;
    case http::field::unknown: // a client's id is kept when it is well formed
      if (iequals(sv(f.name_string()), "x-request-id") &&
          wire::acceptable_request_id(sv(f.value())))
        h.request_id = sv(f.value());
      else if (xff.empty() && iequals(sv(f.name_string()), "x-forwarded-for"))
        xff = sv(f.value());
      break;
    case http::field::max_forwards: {
      std::uint64_t mf = 0;
      const auto v = sv(f.value());
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), mf);
      if (ec == std::errc() && ptr == v.data() + v.size()) h.max_forwards = mf;
      break;
    }
    default:
      break;
    }
  }
  h.client = rules.peer_ip;
  if (rules.peer_trusted && !xff.empty() && rules.trusted)
    h.client = wire::client_address(rules.peer_ip, true, xff, *rules.trusted);
  h.conn = fr.conn;
  const std::string_view cl_value = fr.content_length, te_value = fr.transfer_encoding;
  if (fr.cl_count > 1) return refuse(ErrorKind::bad_request, "more than one Content-Length");
  if (fr.te_count > 0) {
    if (h.version < 11)
      return refuse(ErrorKind::bad_request, "Transfer-Encoding in an HTTP/1.0 request");
    if (!wire::is_only_chunked(te_value)) {
      if (te_value.find(',') != std::string_view::npos || iequals(te_value, "identity"))
        return refuse(ErrorKind::bad_request, "a transfer coding list must be exactly \"chunked\"");
      return refuse(ErrorKind::not_implemented, "unsupported transfer coding");
    }
    h.body = BodyKind::chunked;
  } else if (fr.cl_count == 1) {
    auto n = wire::parse_content_length(cl_value);
    if (!n) return refuse(ErrorKind::bad_request, "malformed Content-Length");
    h.content_length = *n;
    h.body = *n > 0 ? BodyKind::length : BodyKind::none;
  }
  if (host_count > 1) return refuse(ErrorKind::bad_request, "more than one Host");
  if (h.version >= 11 && host_count == 0)
    return refuse(ErrorKind::bad_request, "an HTTP/1.1 request without Host");
  if (!valid_host(host_value)) return refuse(ErrorKind::bad_request, "malformed Host");
  if (h.conn.close) h.keep_alive = false;
  h.host = host_value;
  if (!expect.empty()) {
    // An unknown expectation is refused once routed (a 404 says more for an unknown route).
    h.expect_other = !iequals(expect, "100-continue");
    h.expect_continue = !h.expect_other && h.version >= 11 && h.body != BodyKind::none;
  }
  return read_target(rules, h, pathbuf);
}

std::optional<policy::LocalReply> answer_locally(const RequestHead& h, const router::Match& m) {
  policy::LocalReply r;
  r.status = 200;
  r.body = "";
  if (h.target == "*") return r; // "OPTIONS *" asks about the server itself (RFC 9110 §9.3.7)
  if (!h.max_forwards || *h.max_forwards != 0) return std::nullopt;
  if (h.method_id == model::Method::TRACE) {
    r = {};
    r.kind = ErrorKind::method_not_allowed;
    r.message = "TRACE is not answered by the gateway";
    r.headers.emplace_back("allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
    return r;
  }
  if (h.method_id != model::Method::OPTIONS) return std::nullopt;
  if (m.status == router::MatchStatus::method_not_allowed)
    r.headers.emplace_back("allow", m.allow.to_string());
  return r;
}

void build_upstream_head(const UpstreamRequest& in, HeadScratch& scratch, std::string& head) {
  const RequestHead& r = in.head;
  const policy::Edits& edits = in.edits;
  head += r.method;
  head += ' ';
  if (edits.path)
    head += *edits.path;
  else
    router::append_rewritten_path(head, in.route, in.match.params(), r.path);
  std::string_view query = r.query;
  if (edits.query_changes()) {
    // Parameters filters consume (API keys) or replace are dropped; set ones appended. Names
    // are compared decoded, as filters read them: "api%5Fkey" is the parameter "api_key".
    std::string& q = scratch.query;
    q.clear();
    uri::for_each_raw_param(r.query, scratch.name,
                            [&](std::string_view pair, std::string_view name) {
                              if (pair.empty() || edits.drops_param(name)) return;
                              if (!q.empty()) q += '&';
                              q += pair;
                            });
    if (const policy::Transform* t = edits.transform)
      for (const auto& [k, v] : t->query.set) {
        if (!q.empty()) q += '&';
        uri::append_query_component(q, k);
        q += '=';
        uri::append_query_component(q, v);
      }
    query = q;
  }
  if (!query.empty()) {
    head += '?';
    head += query;
  }
  head += " HTTP/1.1\r\n";
  field(head, "host", in.route.rewrite.host ? std::string_view(*in.route.rewrite.host) : r.host);
  std::string_view in_xff, in_proto, in_host, in_forwarded, via;
  for (const auto& f : in.msg) {
    const auto name = sv(f.name_string());
    switch (f.name()) {
    case http::field::host:
    case http::field::content_length:
    case http::field::expect:
    case http::field::max_forwards:
      continue;
    case http::field::forwarded:
      in_forwarded = sv(f.value());
      continue;
    case http::field::via:
      via = sv(f.value());
      continue;
    case http::field::unknown:
      // X-Forwarded-* and X-Request-Id are replaced by ours (see build_forwarding).
      if (iequals(name, "x-request-id")) continue;
      if (iequals(name, "x-forwarded-for")) {
        in_xff = sv(f.value());
        continue;
      }
      if (iequals(name, "x-forwarded-proto")) {
        in_proto = sv(f.value());
        continue;
      }
      if (iequals(name, "x-forwarded-host")) {
        in_host = sv(f.value());
        continue;
      }
      break;
    default:
      break;
    }
    if (hop_by_hop(f.name(), name) || r.conn.lists(name)) continue;
    if (edits.drops(name)) continue;
    if (edits.transform)
      if (const std::string* to = policy::renamed(edits.transform->request, name)) {
        field(head, *to, sv(f.value()));
        continue;
      }
    if (f.name() == http::field::cookie && !edits.drop_cookies.empty()) {
      const std::size_t mark = head.size();
      head += "cookie: ";
      const std::size_t start = head.size();
      text::append_cookies_without(head, sv(f.value()), edits.drop_cookies);
      if (head.size() == start)
        head.resize(mark); // nothing left
      else
        head += "\r\n";
      continue;
    }
    field(head, name, sv(f.value()));
  }
  // The gateway's own fields (consumer, claims, plugins), unless a headers policy, which runs
  // later, removes or replaces them.
  for (const auto& [k, v] : edits.set)
    if (!edits.transform || !policy::replaces(edits.transform->request, k)) field(head, k, v);
  if (edits.transform) append_ops(head, edits.transform->request);
  wire::Forwarding& fwd = scratch.fwd;
  wire::build_forwarding(wire::ForwardInput{in.peer_ip, in.peer_trusted, "http", r.host, in_xff,
                                            in_proto, in_host, in_forwarded},
                         fwd);
  field(head, "x-forwarded-for", fwd.x_forwarded_for);
  field(head, "x-forwarded-proto", fwd.x_forwarded_proto);
  field(head, "x-forwarded-host", fwd.x_forwarded_host);
  field(head, "forwarded", fwd.forwarded);
  field(head, "x-request-id", r.request_id);
  head += "via: ";
  if (!via.empty()) {
    head += via;
    head += ", ";
  }
  head += r.version == 10 ? "1.0 gw\r\n" : "1.1 gw\r\n";
  if (r.max_forwards) {
    // Decremented (RFC 9110 §7.6.2); a 0 on a method the gateway forwards anyway stays 0.
    head += "max-forwards: ";
    append_number(head, *r.max_forwards == 0 ? 0 : *r.max_forwards - 1);
    head += "\r\n";
  }
  if (r.body == BodyKind::length) {
    head += "content-length: ";
    append_number(head, r.content_length);
    head += "\r\n";
  } else if (r.body == BodyKind::chunked) {
    head += "transfer-encoding: chunked\r\n";
  }
  head += "\r\n";
}

std::expected<ResponsePlan, std::string> plan_response(const ResponseMessage& res,
                                                       bool parser_keep_alive,
                                                       const RequestHead& req, bool keep_alive,
                                                       bool body_changes) {
  ResponsePlan plan;
  plan.status = res.result_int();
  Framing fr;
  for (const auto& f : res)
    fr.take(f);
  const bool no_body = req.head || plan.status == 204 || plan.status == 304;
  if (fr.cl_count > 1) return std::unexpected("sent more than one Content-Length");
  if (fr.te_count > 0) {
    if (!wire::is_only_chunked(fr.transfer_encoding))
      return std::unexpected("used a transfer coding other than chunked");
    if (!no_body) plan.body = BodyKind::chunked;
  } else if (fr.cl_count == 1) {
    auto n = wire::parse_content_length(fr.content_length);
    if (!n) return std::unexpected("sent a malformed Content-Length");
    plan.length = *n;
    if (!no_body && plan.length > 0) plan.body = BodyKind::length;
  } else if (!no_body) {
    plan.body = BodyKind::until_close;
  }
  // How the client gets the body: chunked stays chunked for HTTP/1.1 clients; a close-delimited
  // body becomes chunked for them too, so the connection can stay open. A body a filter changes
  // as it streams has no length known in advance either.
  const bool client11 = req.version >= 11;
  const bool unknown_length = plan.body == BodyKind::chunked ||
                              plan.body == BodyKind::until_close ||
                              (body_changes && plan.body != BodyKind::none);
  plan.to_chunked = client11 && unknown_length;
  plan.length_known = !unknown_length;
  plan.keep_alive = keep_alive && (client11 || !unknown_length);
  plan.upstream_reusable = parser_keep_alive && !fr.conn.close && res.version() >= 11;
  return plan;
}

void build_response_head(const ResponseMessage& res, const ResponsePlan& plan,
                         const RequestHead& req, const policy::Edits& edits, std::string& out) {
  out += "HTTP/1.1 ";
  append_number(out, plan.status);
  out += ' ';
  out += sv(res.reason());
  out += "\r\n";
  ConnectionTokens conn;
  for (const auto& f : res)
    if (f.name() == http::field::connection) conn.add(sv(f.value()));
  const bool no_body = req.head || plan.status == 204 || plan.status == 304;
  bool has_request_id = false;
  std::string_view via;
  const auto edited = [&](std::string_view name) {
    for (const auto& n : edits.response_remove)
      if (iequals(n, name)) return true;
    for (const auto& [n, v] : edits.response_set)
      if (iequals(n, name)) return true;
    return false;
  };
  for (const auto& f : res) {
    const auto name = sv(f.name_string());
    switch (f.name()) {
    case http::field::content_length:
      if (no_body && req.head) break; // HEAD: the length of what GET would send, kept as is
      continue;
    case http::field::via:
      via = sv(f.value());
      continue;
    case http::field::unknown:
      if (iequals(name, "x-request-id")) has_request_id = true;
      break;
    default:
      break;
    }
    if (f.name() != http::field::content_length && (hop_by_hop(f.name(), name) || conn.lists(name)))
      continue;
    if (const policy::Transform* t = edits.transform) {
      if (policy::replaces(t->response, name)) continue;
      if (const std::string* to = policy::renamed(t->response, name)) {
        field(out, *to, sv(f.value()));
        continue;
      }
    }
    if (edited(name)) continue;
    field(out, name, sv(f.value()));
  }
  if (edits.transform) append_ops(out, edits.transform->response);
  fields(out, edits.response_set);
  fields(out, edits.response_add); // CORS, RateLimit
  out += "via: ";
  if (!via.empty()) {
    out += via;
    out += ", ";
  }
  out += res.version() == 10 ? "1.0 gw\r\n" : "1.1 gw\r\n";
  if (!has_request_id) field(out, "x-request-id", req.request_id);
  if ((plan.body == BodyKind::length && plan.length_known) ||
      (!req.head && plan.body == BodyKind::none && plan.status != 204 && plan.status != 304)) {
    out += "content-length: ";
    append_number(out, plan.length);
    out += "\r\n";
  } else if (plan.to_chunked) {
    out += "transfer-encoding: chunked\r\n";
  }
  if (!plan.keep_alive)
    out += "connection: close\r\n";
  else if (req.version < 11)
    out += "connection: keep-alive\r\n";
  out += "\r\n";
}

void render_local_reply(const policy::LocalReply& reply, const RequestHead& req, bool keep_alive,
                        std::string& out) {
  const unsigned status = reply.effective_status();
  const bool bodiless = status == 204 || status == 304;
  std::string json;
  const std::string* body = reply.body ? &*reply.body : &json;
  if (!reply.body) wire::render_reply_body(reply.kind, reply.message, req.request_id, json);
  out += "HTTP/1.1 ";
  append_number(out, status);
  out += ' ';
  out += wire::reason_phrase(status);
  out += "\r\n";
  if (!reply.body)
    out += "content-type: application/json\r\n";
  else if (!reply.content_type.empty() && !bodiless)
    field(out, "content-type", reply.content_type);
  if (!bodiless) {
    out += "content-length: ";
    append_number(out, body->size());
    out += "\r\n";
  }
  if (!req.request_id.empty()) field(out, "x-request-id", req.request_id);
  fields(out, reply.headers);
  if (!keep_alive)
    out += "connection: close\r\n";
  else if (req.version == 10)
    out += "connection: keep-alive\r\n";
  out += "\r\n";
  if (!req.head && !bodiless) out += *body;
}

} // namespace gw::proxy
