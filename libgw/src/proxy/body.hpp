// Private: the body relay's two pure halves, used in both directions (client -> upstream and
// upstream -> client). No sockets: the session's pump reads bytes into a buffer, a BodyReader
// takes the body out of them (counting a Content-Length, or decoding chunked and
// close-delimited bodies with Beast's parser), and a BodyWriter frames it for the other side
// (as is, or as chunks ending with the trailers). Unit-tested in tests/unit/proxy_body_test.cpp.
#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <span>
#include <string>

#include "heads.hpp"

namespace gw::proxy {

/// Takes a body out of the bytes a peer sent. Content-Length bodies are passed on in place
/// (a step's data views the input buffer); chunked and close-delimited bodies are decoded into
/// `scratch`. A step's data stays valid until the next call.
template <bool isRequest>
class BodyReader {
public:
  using Parser = http::parser<isRequest, http::buffer_body>;
  enum class Status : std::uint8_t {
    data,       // `data` holds the next piece
    need_input, // read more into the buffer (at eof: the body ended early)
    done,       // the body is complete; trailers (chunked) are in the parser's fields
    malformed,  // `ec` says how
    too_large,  // past `max_body`
  };
  struct Step {
    Status status;
    std::string_view data;
    boost::system::error_code ec;
  };

  /// `parser` has parsed the head (for chunked and close-delimited bodies). `max_body` 0 is
  /// unbounded.
  BodyReader(BodyKind kind, std::uint64_t length, Parser& parser, std::span<char> scratch,
             std::uint64_t max_body = 0);

  /// The next step, consuming from `in`. `eof`: the peer closed its side (no more input).
  Step next(boost::beast::flat_buffer& in, bool eof);

  /// Bytes taken from the input so far (framing included), for byte counters.
  std::uint64_t consumed() const noexcept { return consumed_; }
  /// Body bytes produced so far.
  std::uint64_t body_bytes() const noexcept { return body_; }
  /// Appends the trailer fields of a chunked body as "name: value\r\n" lines, leaving out
  /// hop-by-hop and framing fields (they may not be sent as trailers, RFC 9110 §6.5.1).
  void append_trailers(std::string& out) const;

private:
  BodyKind kind_;
  std::uint64_t left_;
  Parser& parser_;
  std::span<char> scratch_;
  std::uint64_t max_body_;
  std::size_t pending_ = 0; // in-place bytes handed out by the last step, consumed on the next
  std::size_t fields_before_ = 0;
  std::uint64_t consumed_ = 0, body_ = 0;
};

/// Frames body pieces for the receiving side.
class BodyWriter {
public:
  explicit BodyWriter(bool chunked) : chunked_(chunked) {}
  bool chunked() const noexcept { return chunked_; }
  /// The buffers that carry `data` (an empty piece is nothing: a zero-size chunk would end a
  /// chunked body).
  std::array<boost::asio::const_buffer, 3> frame(std::string_view data);
  /// What ends the body: for chunked, the last chunk, `trailers` ("name: value\r\n" lines) and
  /// the final CRLF; nothing otherwise.
  std::string_view finish(std::string_view trailers);

private:
  bool chunked_;
  std::string line_;
  std::string last_;
};

extern template class BodyReader<true>;
extern template class BodyReader<false>;

} // namespace gw::proxy
