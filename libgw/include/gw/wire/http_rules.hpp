// HTTP/1.1 proxy rules that need no I/O (RFC 9110 / 9112): header-block checks Beast's parser
// lets through, hop-by-hop fields, forwarding headers with a trusted-proxy list, request ids.
// Beast-free so that every rule is unit-tested directly. Read next: session.cpp uses these.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gw/core/error.hpp"

namespace gw::wire {

/// Why a header block is refused before it reaches the parser.
enum class BlockError : std::uint8_t {
  none,
  bare_cr,  // CR not followed by LF
  bare_lf,  // LF not preceded by CR
  obs_fold, // a field line continued on the next line (RFC 9112 §5.2)
  nul,      // a NUL byte
};

/// Checks a complete header block (start line through the empty line).
BlockError check_header_block(std::string_view block) noexcept;

/// Finds the end of a header block in `data`, starting the search at `from`. Returns the length
/// of the block including its final CRLF CRLF, or 0 when it is not complete yet.
std::size_t find_header_end(std::string_view data, std::size_t from) noexcept;

/// Lowercase, trimmed tokens of a comma-separated list ("close, X-Foo" -> {"close", "x-foo"}),
/// appended to `out`.
void split_tokens(std::string_view value, std::vector<std::string>& out);

/// Hop-by-hop fields that a proxy never forwards (RFC 9110 §7.6.1), plus Proxy-Connection and
/// Keep-Alive from RFC 2068 practice. `name` is compared case-insensitively.
bool is_hop_by_hop(std::string_view name) noexcept;

/// True when `value` is exactly one transfer coding, "chunked" (case-insensitive, optional
/// whitespace). Anything else in a request is a 400; in a response, a 502.
bool is_only_chunked(std::string_view value) noexcept;

/// A decimal Content-Length value: digits only, no sign, no list, at most 2^63.
std::optional<std::uint64_t> parse_content_length(std::string_view value) noexcept;

/// An IPv4 or IPv6 network ("10.0.0.0/8", "::1/128", "192.168.1.7").
struct Cidr {
  std::array<std::uint8_t, 16> addr{}; // IPv4 as ::ffff:a.b.c.d
  unsigned prefix = 0;                 // in bits of the 16-byte form
  static Result<Cidr> parse(std::string_view text);
  bool contains(const std::array<std::uint8_t, 16>& ip) const noexcept;
};

/// An address in the 16-byte form used by Cidr (IPv4 mapped), from text.
std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text) noexcept;

/// Decides the forwarding headers for one request (RFC 7239 and the X-Forwarded-* conventions).
/// Client-supplied values are kept only when the direct peer is a trusted proxy; otherwise they
/// are replaced by what gw itself saw.
struct Forwarding {
  std::string x_forwarded_for;
  std::string x_forwarded_proto;
  std::string x_forwarded_host;
  std::string forwarded;
};

struct ForwardInput {
  std::string_view peer_ip; // the direct peer ("127.0.0.1", "::1")
  bool peer_trusted = false;
  std::string_view proto;  // "http" or "https"
  std::string_view host;   // the request's Host
  std::string_view in_xff; // as received ("" when absent)
  std::string_view in_proto;
  std::string_view in_host;
  std::string_view in_forwarded;
};

void build_forwarding(const ForwardInput& in, Forwarding& out);

/// The client a request comes from, as nginx's realip module (recursive) decides it: the direct
/// peer, unless that peer is a trusted proxy, in which case X-Forwarded-For is walked from the
/// right past trusted addresses to the first untrusted one. A malformed entry ends the walk at
/// the trusted hop that passed it on. Rate limits, `hash_on = "client_ip"` and the access log
/// use this address. Returns a view into `peer_ip` or `xff`.
std::string_view client_address(std::string_view peer_ip, bool peer_trusted, std::string_view xff,
                                std::span<const Cidr> trusted) noexcept;

/// A request id supplied by a client is kept when it is 1..128 characters of [A-Za-z0-9._:-].
bool acceptable_request_id(std::string_view id) noexcept;

/// Fast unique ids: 32 hex characters, from a per-thread random seed and a counter.
class RequestIdGenerator {
public:
  RequestIdGenerator();
  /// Writes 32 characters into `out`.
  void next(std::span<char, 32> out) noexcept;

private:
  std::uint64_t hi_, lo_;
};

} // namespace gw::wire
