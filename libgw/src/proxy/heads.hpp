// Private: the message heads of the request path as pure functions over Beast's parsed
// messages; no sockets, so each rule is unit-tested directly (tests/unit/proxy_heads_test.cpp).
//   check_request_head   framing and the fields that decide it (RFC 9112 §6), the target
//   answer_locally       what the gateway answers itself (OPTIONS *, Max-Forwards: 0)
//   build_upstream_head  the request to the upstream, with the filters' edits applied
//   plan_response        how the upstream's body is read and re-framed for the client
//   build_response_head  the response head to the client, with the filters' edits applied
//   render_local_reply   a LocalReply on the wire
// Outgoing heads are written by hand from the parsed fields, leaving out hop-by-hop fields.
#pragma once

#include <array>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "gw/model/config.hpp"
#include "gw/model/method.hpp"
#include "gw/policy/filter.hpp"
#include "gw/router/route_table.hpp"
#include "gw/wire/http_rules.hpp"

namespace gw::proxy {

namespace http = boost::beast::http;
using RequestMessage = http::request<http::buffer_body>;
using ResponseMessage = http::response<http::buffer_body>;

inline std::string_view sv(boost::core::string_view s) {
  return {s.data(), s.size()};
}

enum class BodyKind : std::uint8_t { none, length, chunked, until_close };

/// Tokens of a Connection header (at most 16 kept; more is an attack, not a client).
struct ConnectionTokens {
  std::array<std::string_view, 16> names;
  std::size_t n = 0;
  bool close = false, keep_alive = false;
  void add(std::string_view value);
  bool lists(std::string_view field) const;
};

/// The fields that decide a message's framing (RFC 9112 §6), gathered the same way from requests
/// and responses; each side then applies its own rules to them.
struct Framing {
  int cl_count = 0, te_count = 0;
  std::string_view content_length, transfer_encoding; // the last value of each
  ConnectionTokens conn;
  /// Takes `f` if it is one of them.
  template <class Field>
  bool take(const Field& f) {
    switch (f.name()) {
    case http::field::content_length:
      ++cl_count;
      content_length = sv(f.value());
      return true;
    case http::field::transfer_encoding:
      ++te_count;
      transfer_encoding = sv(f.value());
      return true;
    case http::field::connection:
      conn.add(sv(f.value()));
      return true;
    default:
      return false;
    }
  }
};

/// Hop-by-hop fields (RFC 9110 §7.6.1), by Beast's field code or, for unknown ones, by name.
bool hop_by_hop(http::field f, std::string_view name);

/// A request head as the gateway understood it. Views point into the parsed message, the
/// session's path buffer or the head's own strings.
struct RequestHead {
  std::string_view method;
  model::Method method_id = model::Method::GET;
  std::string_view target, host, path, query;
  std::string absolute_host, absolute_target; // from an absolute-form target
  unsigned version = 11;
  bool keep_alive = true;
  bool head = false; // a HEAD request
  bool expect_continue = false;
  bool expect_other = false; // an Expect other than 100-continue (417 once routed)
  BodyKind body = BodyKind::none;
  std::uint64_t content_length = 0;
  ConnectionTokens conn;
  std::string_view request_id; // the client's when well formed, else "" (the session makes one)
  std::string_view client;     // the peer, or the client a trusted proxy names
  std::optional<std::uint64_t> max_forwards;
  bool idempotent() const noexcept;
};

struct HeadRules {
  std::size_t max_uri_bytes = 8 * 1024;
  std::string_view peer_ip;
  bool peer_trusted = false;
  const std::vector<wire::Cidr>* trusted = nullptr;
};

/// A refused request head: every such refusal closes the connection (the rest of the stream
/// cannot be trusted).
struct HeadRefusal {
  wire::ErrorKind kind;
  std::string message;
};

/// Checks framing (one way to read a request only: duplicate Content-Length, transfer codings
/// other than chunked, Host rules, Expect) and reads the target: origin-form, or absolute-form
/// whose authority replaces Host (RFC 9112 §3.2.2), canonicalised into `pathbuf`. `head` is
/// filled as far as it got, also on refusal (the request id and version are logged).
std::expected<void, HeadRefusal> check_request_head(const RequestMessage& msg,
                                                    const HeadRules& rules, RequestHead& head,
                                                    std::string& pathbuf);

/// Requests the gateway answers itself, after routing: "OPTIONS *" (RFC 9110 §9.3.7), and
/// OPTIONS or TRACE with Max-Forwards: 0 (RFC 9110 §7.6.2: the last recipient answers).
std::optional<policy::LocalReply> answer_locally(const RequestHead& head,
                                                 const router::Match& match);

/// Scratch buffers reused across requests by a session (no allocation once warm).
struct HeadScratch {
  std::string query, name;
  wire::Forwarding fwd;
};

struct UpstreamRequest {
  const RequestHead& head;
  const RequestMessage& msg;
  const model::Route& route;
  const router::Match& match;
  const policy::Edits& edits;
  std::string_view peer_ip;
  bool peer_trusted = false;
};

/// The head to the upstream: method, the rewritten (or a filter's) path, the query without the
/// parameters filters consume, the client's end-to-end fields minus those filters drop, the
/// gateway's own fields (consumer, claims, headers policies), forwarding fields, Via,
/// Max-Forwards and the body's framing. Appended to `out`.
void build_upstream_head(const UpstreamRequest& in, HeadScratch& scratch, std::string& out);

/// How the upstream's response body is read and sent on.
struct ResponsePlan {
  unsigned status = 0;
  BodyKind body = BodyKind::none;
  std::uint64_t length = 0;
  bool to_chunked = false; // re-framed as chunked for the client
  bool keep_alive = true;  // the client connection stays open after it
  bool upstream_reusable = false;
  bool length_known = true; // a Content-Length goes to the client
};

/// Reads the response's framing (RFC 9112 §6.3). `body_changes`: a response filter may change
/// the body as it streams, so its length is not known in advance. An error names what is wrong
/// (for the log: it may name the endpoint).
std::expected<ResponsePlan, std::string> plan_response(const ResponseMessage& res,
                                                       bool parser_keep_alive,
                                                       const RequestHead& req, bool keep_alive,
                                                       bool body_changes);

/// The head to the client: the upstream's end-to-end fields with the filters' response edits
/// (the route's headers policies, response_set/remove, then response_add), Via, the request id
/// when the upstream sent none, and the framing `plan` chose.
void build_response_head(const ResponseMessage& res, const ResponsePlan& plan,
                         const RequestHead& req, const policy::Edits& edits, std::string& out);

/// A local reply: JSON error body `{"error","message","request_id"}` unless the reply carries its
/// own body. 204 and 304 carry no body; HEAD gets the head only.
void render_local_reply(const policy::LocalReply& reply, const RequestHead& req, bool keep_alive,
                        std::string& out);

} // namespace gw::proxy
