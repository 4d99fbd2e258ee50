#include "gw/core/sha256.hpp"

#include <openssl/evp.h>

#include "gw/core/text.hpp"

namespace gw {
namespace {

// Fetched once: OpenSSL 3 otherwise looks the algorithm up (under a lock) on every digest, which
// costs more than hashing an API key does.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md ? md : EVP_sha256();
}

} // namespace

Sha256 sha256(std::span<const unsigned char> data) {
  Sha256 out{};
  unsigned int len = 0;
  // EVP_Digest is one-shot; it cannot fail for SHA-256 short of allocation failure.
  EVP_Digest(data.data(), data.size(), out.data(), &len, sha256_md(), nullptr);
  return out;
}

std::string to_hex(const Sha256& d) {
  return text::hex(d);
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), sha256_md(), nullptr);
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
