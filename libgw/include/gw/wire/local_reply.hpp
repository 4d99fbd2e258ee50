// Every error a request can meet, mapped to a status in one place (Pingora's error kinds). Local
// replies carry a small JSON body: {"error":"no_route","message":"...","request_id":"..."}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gw::wire {

enum class ErrorKind : std::uint8_t {
  bad_request,             // 400 malformed request or framing
  request_timeout,         // 408 the client was too slow to send its request
  body_too_large,          // 413
  uri_too_long,            // 414
  expectation_failed,      // 417 an Expect other than 100-continue
  header_too_large,        // 431
  not_implemented,         // 501 an unknown transfer coding, CONNECT
  no_route,                // 404
  method_not_allowed,      // 405
  unauthorized,            // 401
  forbidden,               // 403
  rate_limited,            // 429
  policy_unavailable,      // 503 a policy's store cannot answer and fails closed
  no_healthy_upstream,     // 503
  upstream_connect_failed, // 502
  upstream_protocol_error, // 502 garbage, bad framing, reset before a response
  upstream_timeout,        // 504
  internal,                // 500
};

unsigned status_of(ErrorKind k) noexcept;
/// Stable snake_case name, used in bodies and access logs.
std::string_view name_of(ErrorKind k) noexcept;
/// Standard reason phrase for a status code ("Not Found"), or "Unknown".
std::string_view reason_phrase(unsigned status) noexcept;

/// What a client is told about an error whose full story is `detail`. Upstream failures get a
/// fixed sentence per kind: their detail names internal addresses ("connecting to
/// 10.0.0.5:8080: Connection refused") and belongs in the access log, not in a response. Other
/// kinds describe the client's own request and keep their detail.
std::string_view client_message(ErrorKind k, std::string_view detail) noexcept;
/// True for the kinds that mean an upstream failed (502, 503 no_healthy_upstream, 504).
bool upstream_failure(ErrorKind k) noexcept;

/// Appends the JSON body of a local reply to `out`.
void render_reply_body(ErrorKind k, std::string_view message, std::string_view request_id,
                       std::string& out);

} // namespace gw::wire
