// SHA-256 through OpenSSL's EVP interface (table digests, source digests).
#pragma once

#include <array>
#include <span>
#include <string>
#include <string_view>

namespace gw {

using Sha256 = std::array<unsigned char, 32>;

Sha256 sha256(std::span<const unsigned char> data);
inline Sha256 sha256(std::string_view s) {
  return sha256(std::span(reinterpret_cast<const unsigned char*>(s.data()), s.size()));
}
std::string to_hex(const Sha256& d);

/// Incremental hashing for data in several pieces.
class Sha256Hasher {
public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void update(std::span<const unsigned char> data);
  Sha256 finish();

private:
  void* ctx_; // EVP_MD_CTX, kept out of this header
};

} // namespace gw
