#include "gw/wire/http_rules.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <random>

#include "gw/core/text.hpp"

namespace gw::wire {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

/// "[::1]" for IPv6 in Forwarded (RFC 7239 §6), quoted because of the colons.
std::string forwarded_node(std::string_view ip) {
  if (ip.find(':') != std::string_view::npos) return "\"[" + std::string(ip) + "]\"";
  return std::string(ip);
}

} // namespace

BlockError check_header_block(std::string_view b) noexcept {
  const std::size_t n = b.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char c = b[i];
    if (c == '\r') {
      if (i + 1 >= n || b[i + 1] != '\n') return BlockError::bare_cr;
    } else if (c == '\n') {
      if (i == 0 || b[i - 1] != '\r') return BlockError::bare_lf;
      // A line that starts with whitespace continues the previous field (obs-fold).
      if (i + 1 < n && (b[i + 1] == ' ' || b[i + 1] == '\t')) return BlockError::obs_fold;
    } else if (c == '\0') {
      return BlockError::nul;
    }
  }
  return BlockError::none;
}

std::size_t find_header_end(std::string_view data, std::size_t from) noexcept {
  if (data.size() < 4) return 0;
  std::size_t i = from > 3 ? from - 3 : 0;
  while (true) {
    const void* p = std::memchr(data.data() + i, '\r', data.size() - i);
    if (!p) return 0;
    i = static_cast<std::size_t>(static_cast<const char*>(p) - data.data());
    if (i + 3 >= data.size()) return 0;
    if (data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') return i + 4;
    ++i;
  }
}

void split_tokens(std::string_view value, std::vector<std::string>& out) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view tok = text::trim(value.substr(0, comma));
    if (!tok.empty()) {
      std::string t(tok);
      for (auto& c : t)
        c = lower(c);
      out.push_back(std::move(t));
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool is_hop_by_hop(std::string_view name) noexcept {
  switch (name.size()) {
  case 2:
    return iequals(name, "te");
  case 7:
    return iequals(name, "trailer") || iequals(name, "upgrade");
  case 10:
    return iequals(name, "connection") || iequals(name, "keep-alive");
  case 16:
    return iequals(name, "proxy-connection");
  case 17:
    return iequals(name, "transfer-encoding");
  case 18:
    return iequals(name, "proxy-authenticate");
  case 19:
    return iequals(name, "proxy-authorization");
  default:
    return false;
  }
}

bool is_only_chunked(std::string_view value) noexcept {
  return iequals(text::trim(value), "chunked");
}

std::optional<std::uint64_t> parse_content_length(std::string_view v) noexcept {
  v = text::trim(v);
  if (v.empty() || v.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n > (1ULL << 63)) return std::nullopt;
  return n;
}

std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text) noexcept {
  char buf[64];
  if (text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  std::array<std::uint8_t, 16> out{};
  in_addr v4;
  if (::inet_pton(AF_INET, buf, &v4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6;
  if (::inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  const auto slash = text.find('/');
  const std::string_view ip = text.substr(0, slash);
  auto addr = parse_ip(ip);
  if (!addr)
    return fail(errc::invalid_argument, "\"" + std::string(ip) + "\" is not an IP address");
  c.addr = *addr;
  const bool v4 = ip.find(':') == std::string_view::npos;
  unsigned bits = v4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    unsigned n = 0;
    if (p.empty() || p.size() > 3)
      return fail(errc::invalid_argument, "bad prefix length in \"" + std::string(text) + "\"");
    for (char ch : p) {
      if (ch < '0' || ch > '9')
        return fail(errc::invalid_argument, "bad prefix length in \"" + std::string(text) + "\"");
      n = n * 10 + static_cast<unsigned>(ch - '0');
    }
    if (n > bits)
      return fail(errc::invalid_argument,
                  "prefix length too long in \"" + std::string(text) + "\"");
    bits = n;
  }
  c.prefix = v4 ? bits + 96 : bits;
  return c;
}

bool Cidr::contains(const std::array<std::uint8_t, 16>& ip) const noexcept {
  unsigned bits = prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - take));
    if ((ip[i] & mask) != (addr[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

void build_forwarding(const ForwardInput& in, Forwarding& out) {
  // X-Forwarded-For: the chain so far (only from a trusted peer), then the peer itself.
  out.x_forwarded_for.clear();
  if (in.peer_trusted && !text::trim(in.in_xff).empty()) {
    out.x_forwarded_for = std::string(text::trim(in.in_xff));
    out.x_forwarded_for += ", ";
  }
  out.x_forwarded_for += in.peer_ip;

  out.x_forwarded_proto = in.peer_trusted && !text::trim(in.in_proto).empty()
                              ? std::string(text::trim(in.in_proto))
                              : std::string(in.proto);
  out.x_forwarded_host = in.peer_trusted && !text::trim(in.in_host).empty()
                             ? std::string(text::trim(in.in_host))
                             : std::string(in.host);
  // Forwarded (RFC 7239): append our hop to a trusted chain, else start a new one.
  out.forwarded.clear();
  if (in.peer_trusted && !text::trim(in.in_forwarded).empty()) {
    out.forwarded = std::string(text::trim(in.in_forwarded));
    out.forwarded += ", ";
  }
  out.forwarded += "for=" + forwarded_node(in.peer_ip) + ";proto=" + std::string(in.proto);
  if (!in.host.empty()) {
    const bool plain = in.host.find_first_of(":[]\"") == std::string_view::npos;
    out.forwarded += ";host=" + (plain ? std::string(in.host) : "\"" + std::string(in.host) + "\"");
  }
}

std::string_view client_address(std::string_view peer_ip, bool peer_trusted, std::string_view xff,
                                std::span<const Cidr> trusted) noexcept {
  std::string_view client = peer_ip;
  if (!peer_trusted) return client;
  while (!xff.empty()) {
    const auto comma = xff.rfind(',');
    const std::string_view entry =
        text::trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
    xff = comma == std::string_view::npos ? std::string_view() : xff.substr(0, comma);
    const auto ip = parse_ip(entry);
    if (!ip) break; // garbage from the hop we trust: believe that hop, nothing further left
    client = entry;
    bool is_trusted = false;
    for (const auto& c : trusted)
      is_trusted = is_trusted || c.contains(*ip);
    if (!is_trusted) break;
  }
  return client;
}

bool acceptable_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

RequestIdGenerator::RequestIdGenerator() {
  std::random_device rd;
  hi_ = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  lo_ = (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

void RequestIdGenerator::next(std::span<char, 32> out) noexcept {
  // A counter mixed with splitmix64: unique per generator, unpredictable enough for log
  // correlation (these ids are not secrets).
  ++lo_;
  std::uint64_t a = lo_ + 0x9E3779B97F4A7C15ULL, b = hi_ ^ lo_;
  a = (a ^ (a >> 30)) * 0xBF58476D1CE4E5B9ULL;
  a = (a ^ (a >> 27)) * 0x94D049BB133111EBULL;
  a ^= a >> 31;
  b = (b ^ (b >> 30)) * 0xBF58476D1CE4E5B9ULL;
  b ^= b >> 27;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i)
    out[static_cast<std::size_t>(i)] = kHex[(a >> (4 * i)) & 15];
  for (int i = 0; i < 16; ++i)
    out[static_cast<std::size_t>(16 + i)] = kHex[(b >> (4 * i)) & 15];
}

} // namespace gw::wire
