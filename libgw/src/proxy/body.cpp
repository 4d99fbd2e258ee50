#include "body.hpp"

#include <algorithm>
#include <charconv>

namespace gw::proxy {

template <bool isRequest>
BodyReader<isRequest>::BodyReader(BodyKind kind, std::uint64_t length, Parser& parser,
                                  std::span<char> scratch, std::uint64_t max_body)
    : kind_(kind), left_(length), parser_(parser), scratch_(scratch), max_body_(max_body) {
  for (auto it = parser_.get().begin(); it != parser_.get().end(); ++it)
    ++fields_before_;
}

template <bool isRequest>
typename BodyReader<isRequest>::Step BodyReader<isRequest>::next(boost::beast::flat_buffer& in,
                                                                 bool eof) {
  if (pending_) {
    in.consume(pending_);
    pending_ = 0;
  }
  if (kind_ == BodyKind::none) return {Status::done, {}, {}};
  if (kind_ == BodyKind::length) {
    if (left_ == 0) return {Status::done, {}, {}};
    if (in.size() == 0) return {Status::need_input, {}, {}};
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, in.size()));
    left_ -= n;
    consumed_ += n;
    body_ += n;
    if (max_body_ && body_ > max_body_) return {Status::too_large, {}, {}};
    pending_ = n;
    return {Status::data, {static_cast<const char*>(in.data().data()), n}, {}};
  }
  // Chunked or until close: Beast's parser decodes into the scratch buffer.
  for (;;) {
    if (parser_.is_done()) return {Status::done, {}, {}};
    auto& body = parser_.get().body();
    body.data = scratch_.data();
    body.size = scratch_.size();
    body.more = true;
    boost::system::error_code ec;
    std::size_t used = 0;
    if (in.size() > 0) {
      used = parser_.put(in.data(), ec);
      in.consume(used);
      consumed_ += used;
      // need_buffer: our buffer is full; need_more: an element is incomplete. Neither is an
      // error.
      if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
    } else if (eof) {
      parser_.put_eof(ec);
      used = 1; // progress: the parser has seen the end
    }
    if (ec) return {Status::malformed, {}, ec};
    const std::size_t got = scratch_.size() - body.size;
    if (got > 0) {
      body_ += got;
      if (max_body_ && body_ > max_body_) return {Status::too_large, {}, {}};
      return {Status::data, {scratch_.data(), got}, {}};
    }
    if (used == 0) return {parser_.is_done() ? Status::done : Status::need_input, {}, {}};
    if (eof && !parser_.is_done()) return {Status::need_input, {}, {}};
  }
}

template <bool isRequest>
void BodyReader<isRequest>::append_trailers(std::string& out) const {
  if (kind_ != BodyKind::chunked) return;
  std::size_t i = 0;
  for (const auto& f : parser_.get()) {
    if (i++ < fields_before_) continue; // trailers come after the head's fields
    const auto name = sv(f.name_string());
    if (hop_by_hop(f.name(), name) || f.name() == http::field::content_length ||
        f.name() == http::field::host)
      continue;
    out += name;
    out += ": ";
    out += sv(f.value());
    out += "\r\n";
  }
}

template class BodyReader<true>;
template class BodyReader<false>;

std::array<boost::asio::const_buffer, 3> BodyWriter::frame(std::string_view data) {
  namespace net = boost::asio;
  if (!chunked_ || data.empty())
    return {net::buffer(data.data(), data.size()), net::const_buffer(), net::const_buffer()};
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, data.size(), 16);
  line_.assign(buf, p);
  line_ += "\r\n";
  return {net::buffer(line_), net::buffer(data.data(), data.size()), net::buffer("\r\n", 2)};
}

std::string_view BodyWriter::finish(std::string_view trailers) {
  if (!chunked_) return {};
  last_ = "0\r\n";
  last_ += trailers;
  last_ += "\r\n";
  return last_;
}

} // namespace gw::proxy
