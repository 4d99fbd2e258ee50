// Test support: key pairs generated at test time (never checked in), once per process, since RSA
// key generation is slow. Each key has its OpenSSL handle and both PEM forms.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace gwtest {

struct TestKey {
  std::shared_ptr<EVP_PKEY> pk;
  std::string pub_pem, priv_pem;
};

inline std::string take_bio(BIO* bio) {
  std::string out;
  char buf[4096];
  for (int n; (n = BIO_read(bio, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

/// Takes ownership of `raw` (from EVP_PKEY_Q_keygen) and writes its PEMs.
inline TestKey make_key(EVP_PKEY* raw) {
  REQUIRE(raw != nullptr);
  TestKey k{std::shared_ptr<EVP_PKEY>(raw, EVP_PKEY_free), {}, {}};
  BIO* pub = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(pub, raw) == 1);
  k.pub_pem = take_bio(pub);
  BIO* priv = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(priv, raw, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  k.priv_pem = take_bio(priv);
  return k;
}

inline const TestKey& rsa_key() {
  static const TestKey k = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  return k;
}
inline const TestKey& other_rsa_key() {
  static const TestKey k = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  return k;
}
inline const TestKey& p256_key() {
  static const TestKey k = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return k;
}
inline const TestKey& other_p256_key() {
  static const TestKey k = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return k;
}
inline const TestKey& p384_key() {
  static const TestKey k = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  return k;
}
inline const TestKey& ed_key() {
  static const TestKey k = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  return k;
}

} // namespace gwtest
