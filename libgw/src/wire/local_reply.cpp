#include "gw/wire/local_reply.hpp"

namespace gw::wire {

unsigned status_of(ErrorKind k) noexcept {
  switch (k) {
  case ErrorKind::bad_request:
    return 400;
  case ErrorKind::request_timeout:
    return 408;
  case ErrorKind::body_too_large:
    return 413;
  case ErrorKind::uri_too_long:
    return 414;
  case ErrorKind::expectation_failed:
    return 417;
  case ErrorKind::header_too_large:
    return 431;
  case ErrorKind::not_implemented:
    return 501;
  case ErrorKind::no_route:
    return 404;
  case ErrorKind::method_not_allowed:
    return 405;
  case ErrorKind::unauthorized:
    return 401;
  case ErrorKind::forbidden:
    return 403;
  case ErrorKind::rate_limited:
    return 429;
  case ErrorKind::policy_unavailable:
    return 503;
  case ErrorKind::no_healthy_upstream:
    return 503;
  case ErrorKind::upstream_connect_failed:
    return 502;
  case ErrorKind::upstream_protocol_error:
    return 502;
  case ErrorKind::upstream_timeout:
    return 504;
  case ErrorKind::internal:
    return 500;
  }
  return 500;
}

std::string_view name_of(ErrorKind k) noexcept {
  switch (k) {
  case ErrorKind::bad_request:
    return "bad_request";
  case ErrorKind::request_timeout:
    return "request_timeout";
  case ErrorKind::body_too_large:
    return "body_too_large";
  case ErrorKind::uri_too_long:
    return "uri_too_long";
  case ErrorKind::expectation_failed:
    return "expectation_failed";
  case ErrorKind::header_too_large:
    return "header_too_large";
  case ErrorKind::not_implemented:
    return "not_implemented";
  case ErrorKind::no_route:
    return "no_route";
  case ErrorKind::method_not_allowed:
    return "method_not_allowed";
  case ErrorKind::unauthorized:
    return "unauthorized";
  case ErrorKind::forbidden:
    return "forbidden";
  case ErrorKind::rate_limited:
    return "rate_limited";
  case ErrorKind::policy_unavailable:
    return "policy_unavailable";
  case ErrorKind::no_healthy_upstream:
    return "no_healthy_upstream";
  case ErrorKind::upstream_connect_failed:
    return "upstream_connect_failed";
  case ErrorKind::upstream_protocol_error:
    return "upstream_protocol_error";
  case ErrorKind::upstream_timeout:
    return "upstream_timeout";
  case ErrorKind::internal:
    return "internal";
  }
  return "internal";
}

std::string_view reason_phrase(unsigned status) noexcept {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 417:
    return "Expectation Failed";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

bool upstream_failure(ErrorKind k) noexcept {
  return k == ErrorKind::upstream_connect_failed || k == ErrorKind::upstream_protocol_error ||
         k == ErrorKind::upstream_timeout || k == ErrorKind::no_healthy_upstream;
}

std::string_view client_message(ErrorKind k, std::string_view detail) noexcept {
  switch (k) {
  case ErrorKind::upstream_connect_failed:
    return "the upstream service could not be reached";
  case ErrorKind::upstream_protocol_error:
    return "the upstream service sent no valid response";
  case ErrorKind::upstream_timeout:
    return "the upstream service did not answer in time";
  case ErrorKind::no_healthy_upstream:
    return "no instance of the upstream service is available";
  default:
    return detail;
  }
}

namespace {
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out += kHex[(c >> 4) & 15];
        out += kHex[c & 15];
      } else {
        out += c;
      }
    }
  }
  out += '"';
}
} // namespace

void render_reply_body(ErrorKind k, std::string_view message, std::string_view request_id,
                       std::string& out) {
  out += "{\"error\":";
  append_json_string(out, name_of(k));
  out += ",\"message\":";
  append_json_string(out, message);
  out += ",\"request_id\":";
  append_json_string(out, request_id);
  out += "}\n";
}

} // namespace gw::wire
