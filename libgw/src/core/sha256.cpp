#include "gw/core/sha256.hpp"

#include <openssl/evp.h>

#include "gw/core/text.hpp"

namespace gw {

Sha256 sha256(std::span<const unsigned char> data) {
  Sha256 out{};
  unsigned int len = 0;
  // EVP_Digest is one-shot; it cannot fail for SHA-256 short of allocation failure.
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string to_hex(const Sha256& d) {
  return text::hex(d);
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256Hasher::~Sha256Hasher() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}
void Sha256Hasher::update(std::span<const unsigned char> data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
Sha256 Sha256Hasher::finish() {
  Sha256 out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &len);
  return out;
}

} // namespace gw
