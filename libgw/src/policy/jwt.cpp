// JSON Web Tokens (RFC 7515/7519): see jwt.hpp.
#include "gw/policy/jwt.hpp"

#include <algorithm>
#include <array>
#include <climits>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "gw/core/text.hpp"

namespace gw::policy::jwt {
namespace {

using json = nlohmann::json;
using detail::KeyKind;

template <auto F>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    F(p);
  }
};
template <class T, auto F>
using Ptr = std::unique_ptr<T, Deleter<F>>;
using BioPtr = Ptr<BIO, BIO_free>;
using BnPtr = Ptr<BIGNUM, BN_free>;
using MdCtxPtr = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using PkeyCtxPtr = Ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EcdsaSigPtr = Ptr<ECDSA_SIG, ECDSA_SIG_free>;
using X509Ptr = Ptr<X509, X509_free>;
using ParamBldPtr = Ptr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamsPtr = Ptr<OSSL_PARAM, OSSL_PARAM_free>;
using PkeyPtr = std::shared_ptr<evp_pkey_st>;

// RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used" with RS* and PS*.
constexpr int kMinRsaBits = 2048;
constexpr std::size_t kMaxPemBytes = 1 << 20;

enum class Family : std::uint8_t { hmac, rsa, pss, ecdsa, eddsa };

struct AlgInfo {
  std::string_view name;
  Family family;
  int hash_bits; // 0: none (Ed25519 hashes internally)
};
// Indexed by Alg.
constexpr std::array<AlgInfo, 12> kAlgs = {{
    {"HS256", Family::hmac, 256},
    {"HS384", Family::hmac, 384},
    {"HS512", Family::hmac, 512},
    {"RS256", Family::rsa, 256},
    {"RS384", Family::rsa, 384},
    {"RS512", Family::rsa, 512},
    {"PS256", Family::pss, 256},
    {"PS384", Family::pss, 384},
    {"PS512", Family::pss, 512},
    {"ES256", Family::ecdsa, 256},
    {"ES384", Family::ecdsa, 384},
    {"EdDSA", Family::eddsa, 0},
}};

const AlgInfo& info(Alg a) noexcept {
  return kAlgs[static_cast<std::size_t>(a)];
}
Family family(Alg a) noexcept {
  return info(a).family;
}
const EVP_MD* digest(Alg a) noexcept {
  switch (info(a).hash_bits) {
  case 256:
    return EVP_sha256();
  case 384:
    return EVP_sha384();
  case 512:
    return EVP_sha512();
  }
  return nullptr;
}

bool kind_accepts(KeyKind k, Alg a) noexcept {
  switch (k) {
  case KeyKind::rsa:
    return family(a) == Family::rsa || family(a) == Family::pss;
  case KeyKind::ec_p256:
    return a == Alg::ES256;
  case KeyKind::ec_p384:
    return a == Alg::ES384;
  case KeyKind::ed25519:
    return a == Alg::EdDSA;
  case KeyKind::hmac:
    return family(a) == Family::hmac;
  }
  return false;
}

const unsigned char* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Adds OpenSSL's reason to the message and empties the thread's error queue, so a stale error
// never surfaces in an unrelated later call.
std::unexpected<Error> ossl_fail(errc e, std::string msg) {
  if (unsigned long code = ERR_peek_last_error(); code != 0)
    if (const char* reason = ERR_reason_error_string(code)) {
      msg += " (";
      msg += reason;
      msg += ')';
    }
  ERR_clear_error();
  return fail(e, std::move(msg));
}

// Secrets live in one heap string shared by all copies and wiped when the last copy goes.
std::shared_ptr<const std::string> hold_secret(std::string s) {
  return std::shared_ptr<std::string>(new std::string(std::move(s)), [](std::string* p) {
    OPENSSL_cleanse(p->data(), p->size());
    delete p;
  });
}

Result<std::shared_ptr<const std::string>> checked_secret(std::string s) {
  if (s.empty()) return fail(errc::invalid_argument, "an HMAC secret must not be empty");
  if (s.size() > INT_MAX) // HMAC() takes an int length
    return fail(errc::too_large, "the HMAC secret is too large");
  return hold_secret(std::move(s));
}

struct Classified {
  KeyKind kind;
  int bits;
};

// Which of the supported key types `pk` is; refuses weak RSA and curves no JWS alg here uses.
Result<Classified> classify(EVP_PKEY* pk) {
  const int bits = EVP_PKEY_get_bits(pk);
  if (EVP_PKEY_is_a(pk, "RSA")) {
    if (bits < kMinRsaBits)
      return fail(errc::invalid_argument,
                  "RSA key has " + std::to_string(bits) + " bits; at least 2048 are required");
    return Classified{KeyKind::rsa, bits};
  }
  if (EVP_PKEY_is_a(pk, "EC")) {
    char group[80] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(pk, group, sizeof group, &len) != 1)
      return ossl_fail(errc::unsupported, "EC key without a named curve");
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef) nid = EC_curve_nist2nid(group);
    if (nid == NID_X9_62_prime256v1) return Classified{KeyKind::ec_p256, bits};
    if (nid == NID_secp384r1) return Classified{KeyKind::ec_p384, bits};
    return fail(errc::unsupported,
                "EC curve " + text::quote(group) + " is not supported (P-256 or P-384)");
  }
  if (EVP_PKEY_is_a(pk, "ED25519")) return Classified{KeyKind::ed25519, bits};
  // RSA-PSS keys carry parameter restrictions that would have to be reconciled with PS*'s.
  const char* type = EVP_PKEY_get0_type_name(pk);
  return fail(errc::unsupported, std::string("unsupported key type ") +
                                     text::quote(type ? type : "?") +
                                     " (RSA, EC P-256/P-384 or Ed25519)");
}

Result<PkeyPtr> read_public_pem(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return fail(errc::too_large, "PEM is over 1 MiB");
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos)
    return fail(errc::invalid_argument,
                "this PEM holds a private key; give the public key (openssl pkey -pubout)");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = nullptr;
  if (bio && pem.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert) raw = X509_get_pubkey(cert.get()); // a new reference
  } else if (bio) {
    raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  }
  if (!raw)
    return ossl_fail(errc::invalid_argument,
                     "not a public key or certificate PEM (\"BEGIN PUBLIC KEY\" or \"BEGIN "
                     "CERTIFICATE\")");
  return PkeyPtr(raw, EVP_PKEY_free);
}

// EVP_PKEY_fromdata for a public key of `type` from the parameters in `bld`.
Result<PkeyPtr> from_params(const char* type, OSSL_PARAM_BLD* bld) {
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return ossl_fail(errc::invalid_argument, std::string("not a valid ") + type + " public key");
  return PkeyPtr(raw, EVP_PKEY_free);
}

// JWK members that are base64url byte strings (RFC 7518 §6).
Result<std::string> jwk_bytes(const json& jwk, const char* member) {
  auto it = jwk.find(member);
  if (it == jwk.end() || !it->is_string())
    return fail(errc::invalid_argument, std::string("JWK has no \"") + member + "\" string");
  auto out = base64url_decode(it->get_ref<const std::string&>());
  if (!out || out->empty())
    return fail(errc::invalid_argument, std::string("JWK \"") + member + "\" is not base64url");
  return std::move(*out);
}

Result<PkeyPtr> rsa_from_jwk(const json& jwk) {
  auto n = jwk_bytes(jwk, "n");
  auto e = n ? jwk_bytes(jwk, "e") : n;
  if (!e) return std::unexpected(e.error());
  BnPtr bn_n(BN_bin2bn(bytes(*n), static_cast<int>(n->size()), nullptr));
  BnPtr bn_e(BN_bin2bn(bytes(*e), static_cast<int>(e->size()), nullptr));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()))
    return ossl_fail(errc::invalid_argument, "cannot import the RSA JWK");
  return from_params("RSA", bld.get());
}

Result<PkeyPtr> ec_from_jwk(const json& jwk) {
  auto crv = jwk.find("crv");
  const bool p256 = crv != jwk.end() && *crv == "P-256";
  const bool p384 = crv != jwk.end() && *crv == "P-384";
  if (!p256 && !p384) return fail(errc::unsupported, "EC JWK crv must be P-256 or P-384");
  auto x = jwk_bytes(jwk, "x");
  auto y = x ? jwk_bytes(jwk, "y") : x;
  if (!y) return std::unexpected(y.error());
  // RFC 7518 §6.2.1.2: coordinates are full-length, so a short one is a malformed key.
  const std::size_t n = p256 ? 32 : 48;
  if (x->size() != n || y->size() != n)
    return fail(errc::invalid_argument,
                "EC JWK coordinates must be " + std::to_string(n) + " bytes each");
  const std::string point = '\x04' + *x + *y; // SEC 1 uncompressed point
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                       p256 ? "prime256v1" : "secp384r1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size()))
    return ossl_fail(errc::invalid_argument, "cannot import the EC JWK");
  auto pk = from_params("EC", bld.get());
  if (!pk) return pk;
  // Explicitly reject points off the curve (invalid-curve inputs), whatever the import checked.
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pk->get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    return ossl_fail(errc::invalid_argument, "EC JWK point is not on the curve");
  return pk;
}

Result<PkeyPtr> okp_from_jwk(const json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || *crv != "Ed25519")
    return fail(errc::unsupported, "OKP JWK crv must be Ed25519");
  auto x = jwk_bytes(jwk, "x");
  if (!x) return std::unexpected(x.error());
  if (x->size() != 32) return fail(errc::invalid_argument, "Ed25519 JWK x must be 32 bytes");
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, bytes(*x), 32);
  if (!raw) return ossl_fail(errc::invalid_argument, "cannot import the Ed25519 JWK");
  return PkeyPtr(raw, EVP_PKEY_free);
}

void set_pss(EVP_PKEY_CTX* pctx, const EVP_MD* md, bool& ok) noexcept {
  // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
  ok = ok && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0;
}

std::size_t coord_size(Alg a) noexcept {
  return a == Alg::ES256 ? 32 : 48;
}

// JWS carries ECDSA signatures as fixed-width r||s (RFC 7518 §3.4); OpenSSL wants DER.
int raw_to_der(std::string_view raw, std::size_t n, unsigned char* out, int cap) noexcept {
  if (raw.size() != 2 * n) return 0;
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes(raw), static_cast<int>(n), nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw.substr(n)), static_cast<int>(n), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return 0;
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0 || len > cap) return 0;
  unsigned char* p = out;
  return i2d_ECDSA_SIG(sig.get(), &p);
}

bool verify_pkey(Alg a, EVP_PKEY* pk, std::string_view input, std::string_view sig) noexcept {
  unsigned char der[160]; // a P-384 DER signature is at most 105 bytes
  const unsigned char* s = bytes(sig);
  std::size_t slen = sig.size();
  if (family(a) == Family::ecdsa) {
    const int len = raw_to_der(sig, coord_size(a), der, sizeof der);
    if (len <= 0) {
      ERR_clear_error();
      return false;
    }
    s = der;
    slen = static_cast<std::size_t>(len);
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), &pctx, digest(a), nullptr, pk) == 1;
  if (family(a) == Family::pss) set_pss(pctx, digest(a), ok);
  ok = ok && EVP_DigestVerify(ctx.get(), s, slen, bytes(input), input.size()) == 1;
  ERR_clear_error();
  return ok;
}

Result<std::string> sign_pkey(Alg a, EVP_PKEY* pk, std::string_view input) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = ctx && EVP_DigestSignInit(ctx.get(), &pctx, digest(a), nullptr, pk) == 1;
  if (family(a) == Family::pss) set_pss(pctx, digest(a), ok);
  std::size_t len = 0;
  ok = ok && EVP_DigestSign(ctx.get(), nullptr, &len, bytes(input), input.size()) == 1;
  std::string sig(len, '\0');
  ok = ok && EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                            bytes(input), input.size()) == 1;
  if (!ok) return ossl_fail(errc::invalid_argument, "signing failed");
  sig.resize(len);
  if (family(a) != Family::ecdsa) return sig;
  // DER back to the fixed-width r||s of RFC 7518 §3.4.
  const unsigned char* p = bytes(sig);
  EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  const std::size_t n = coord_size(a);
  std::string raw(2 * n, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), out, static_cast<int>(n)) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), out + n, static_cast<int>(n)) < 0)
    return ossl_fail(errc::invalid_argument, "cannot convert the ECDSA signature");
  return raw;
}

bool hmac(Alg a, const std::string& secret, std::string_view input, unsigned char* out,
          unsigned int& len) noexcept {
  const bool ok = HMAC(digest(a), secret.data(), static_cast<int>(secret.size()), bytes(input),
                       input.size(), out, &len) != nullptr;
  if (!ok) ERR_clear_error();
  return ok;
}

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> kB64UrlValues = [] {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(kB64Url[i])] = static_cast<std::int8_t>(i);
  return t;
}();

} // namespace

std::optional<Alg> alg_from_name(std::string_view s) {
  for (std::size_t i = 0; i < kAlgs.size(); ++i)
    if (kAlgs[i].name == s) return static_cast<Alg>(i);
  return std::nullopt;
}

std::string_view name(Alg a) noexcept {
  return info(a).name;
}

std::vector<std::string> alg_names() {
  std::vector<std::string> out;
  out.reserve(kAlgs.size());
  for (const auto& a : kAlgs)
    out.emplace_back(a.name);
  return out;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64Url[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64Url[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> base64url_decode(std::string_view s) {
  if (s.size() % 4 == 1) // 6 bits cannot make a byte
    return std::nullopt;
  std::string out;
  out.reserve(s.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = kB64UrlValues[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = ((acc << 6) | static_cast<std::uint32_t>(v)) & 0xfff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Non-zero leftover bits would give one byte string several encodings (malleable tokens).
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// ---- Key ----

Result<Key> Key::from_pem(std::string_view pem) {
  auto pk = read_public_pem(pem);
  if (!pk) return std::unexpected(pk.error());
  auto c = classify(pk->get());
  if (!c) return std::unexpected(c.error());
  Key k;
  k.kind_ = c->kind;
  k.bits_ = c->bits;
  k.pkey_ = std::move(*pk);
  return k;
}

Result<Key> Key::from_secret(std::string secret) {
  auto s = checked_secret(std::move(secret));
  if (!s) return std::unexpected(s.error());
  Key k;
  k.kind_ = KeyKind::hmac;
  k.secret_ = std::move(*s);
  return k;
}

Result<Key> Key::from_jwk(const json& jwk) {
  if (!jwk.is_object()) return fail(errc::invalid_argument, "a JWK must be a JSON object");
  auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string())
    return fail(errc::invalid_argument, "JWK has no \"kty\" string");
  // RFC 7517 §4.2/§4.3: a key meant for encryption or without "verify" is not ours to use.
  if (auto use = jwk.find("use"); use != jwk.end() && *use != "sig")
    return fail(errc::unsupported, "JWK \"use\" is not \"sig\"");
  if (auto ops = jwk.find("key_ops");
      ops != jwk.end() &&
      (!ops->is_array() || std::find(ops->begin(), ops->end(), "verify") == ops->end()))
    return fail(errc::unsupported, "JWK \"key_ops\" does not include \"verify\"");
  Key k;
  if (auto kid = jwk.find("kid"); kid != jwk.end()) {
    if (!kid->is_string()) return fail(errc::invalid_argument, "JWK \"kid\" is not a string");
    k.kid_ = kid->get<std::string>();
  }
  if (auto alg = jwk.find("alg"); alg != jwk.end()) {
    k.alg_ = alg->is_string() ? alg_from_name(alg->get_ref<const std::string&>()) : std::nullopt;
    if (!k.alg_) return fail(errc::unsupported, "JWK \"alg\" is not a supported JWS algorithm");
  }

  const auto& type = kty->get_ref<const std::string&>();
  if (type == "oct") {
    auto secret = jwk_bytes(jwk, "k");
    if (!secret) return std::unexpected(secret.error());
    auto held = checked_secret(std::move(*secret));
    if (!held) return std::unexpected(held.error());
    k.kind_ = KeyKind::hmac;
    k.secret_ = std::move(*held);
  } else {
    Result<PkeyPtr> pk = type == "RSA"  ? rsa_from_jwk(jwk)
                         : type == "EC" ? ec_from_jwk(jwk)
                         : type == "OKP"
                             ? okp_from_jwk(jwk)
                             : fail(errc::unsupported, "unsupported kty " + text::quote(type));
    if (!pk) return std::unexpected(pk.error());
    auto c = classify(pk->get());
    if (!c) return std::unexpected(c.error());
    k.kind_ = c->kind;
    k.bits_ = c->bits;
    k.pkey_ = std::move(*pk);
  }
  if (k.alg_ && !kind_accepts(k.kind_, *k.alg_))
    return fail(errc::invalid_argument,
                "JWK \"alg\" " + std::string(name(*k.alg_)) + " does not fit its " + k.describe());
  return k;
}

bool Key::accepts(Alg a) const noexcept {
  return kind_accepts(kind_, a) && (!alg_ || *alg_ == a);
}

std::string Key::describe() const {
  switch (kind_) {
  case KeyKind::rsa:
    return "RSA " + std::to_string(bits_);
  case KeyKind::ec_p256:
    return "EC P-256";
  case KeyKind::ec_p384:
    return "EC P-384";
  case KeyKind::ed25519:
    return "Ed25519";
  case KeyKind::hmac:
    return "HMAC secret";
  }
  return "?";
}

Result<KeySet> parse_jwks(std::string_view text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail(errc::invalid_argument, "JWKS is not valid JSON");
  auto keys = doc.is_object() ? doc.find("keys") : doc.end();
  if (!doc.is_object() || keys == doc.end() || !keys->is_array())
    return fail(errc::invalid_argument, "JWKS has no \"keys\" array");
  KeySet set;
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const json& jwk = (*keys)[i];
    auto key = Key::from_jwk(jwk);
    if (key) {
      set.keys.push_back(std::move(*key));
      continue;
    }
    std::string who = "keys[" + std::to_string(i) + "]";
    if (auto kid = jwk.is_object() ? jwk.find("kid") : jwk.end();
        jwk.is_object() && kid != jwk.end() && kid->is_string())
      who += " (kid " + text::quote(kid->get_ref<const std::string&>()) + ")";
    set.skipped.push_back(who + ": " + key.error().message);
  }
  return set;
}

// ---- Token ----

Result<Token> decode(std::string_view compact) {
  if (compact.size() > kMaxTokenBytes) return fail(errc::too_large, "token is over 16 KiB");
  const auto dot1 = compact.find('.');
  const auto dot2 = dot1 == compact.npos ? dot1 : compact.find('.', dot1 + 1);
  if (dot2 == compact.npos || compact.find('.', dot2 + 1) != compact.npos)
    return fail(errc::invalid_argument, "token must have three dot-separated parts");
  auto header_text = base64url_decode(compact.substr(0, dot1));
  auto claims_text = base64url_decode(compact.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(compact.substr(dot2 + 1));
  if (!header_text || !claims_text || !signature)
    return fail(errc::invalid_argument, "token is not base64url");

  json header = json::parse(*header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object())
    return fail(errc::invalid_argument, "token header is not a JSON object");
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string())
    return fail(errc::invalid_argument, "token header has no alg");
  // RFC 8725 §2.1: never accept unsecured tokens, whatever they carry as a signature.
  if (*alg_it == "none") return fail(errc::unsupported, "alg none is not accepted");
  const auto alg = alg_from_name(alg_it->get_ref<const std::string&>());
  if (!alg) return fail(errc::unsupported, "token alg is not supported");
  // RFC 7515 §4.1.11: extensions listed in crit must be understood; gw understands none.
  if (header.contains("crit"))
    return fail(errc::unsupported, "token header has crit, which is not supported");
  std::string kid;
  if (auto it = header.find("kid"); it != header.end()) {
    if (!it->is_string()) return fail(errc::invalid_argument, "token kid is not a string");
    kid = it->get<std::string>();
  }

  json claims = json::parse(*claims_text, nullptr, false);
  if (claims.is_discarded() || !claims.is_object())
    return fail(errc::invalid_argument, "token claims are not a JSON object");
  if (signature->empty()) return fail(errc::invalid_argument, "token has no signature");
  return Token{*alg,
               std::move(kid),
               std::move(header),
               std::move(claims),
               compact.substr(0, dot2),
               std::move(*signature)};
}

bool verify(const Token& t, const Key& k) noexcept {
  // The key, not the token, decides which algorithms are possible: an RSA public key is never
  // used as an HMAC secret (the classic alg-confusion attack, RFC 8725 §2.1 and §3.1).
  if (!k.accepts(t.alg)) return false;
  if (family(t.alg) != Family::hmac)
    return k.pkey_ && verify_pkey(t.alg, k.pkey_.get(), t.signing_input, t.signature);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  return k.secret_ && hmac(t.alg, *k.secret_, t.signing_input, mac, len) &&
         t.signature.size() == len && CRYPTO_memcmp(mac, t.signature.data(), len) == 0;
}

// ---- Claims ----

std::optional<std::string> check_claims(const json& claims, const ClaimRules& rules,
                                        std::int64_t now) {
  if (!claims.is_object()) return "claims are not an object";
  // NumericDate may be fractional (RFC 7519 §2); doubles are exact for any plausible time.
  const double t = static_cast<double>(now);
  const double leeway = static_cast<double>(std::max<std::int64_t>(rules.leeway_s, 0));
  if (auto exp = claims.find("exp"); exp != claims.end()) {
    if (!exp->is_number()) return "exp is not a number";
    // RFC 7519 §4.1.4: invalid on or after exp.
    if (t >= exp->get<double>() + leeway) return "token expired";
  } else if (rules.require_exp) {
    return "token has no exp";
  }
  if (auto nbf = claims.find("nbf"); nbf != claims.end()) {
    if (!nbf->is_number()) return "nbf is not a number";
    if (t + leeway < nbf->get<double>()) return "token not yet valid";
  }
  if (auto iat = claims.find("iat"); iat != claims.end() && !iat->is_number())
    return "iat is not a number";

  if (!rules.issuers.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end()) return "token has no iss";
    if (!iss->is_string()) return "iss is not a string";
    if (std::find(rules.issuers.begin(), rules.issuers.end(), iss->get_ref<const std::string&>()) ==
        rules.issuers.end())
      return "wrong issuer";
  }
  if (!rules.audiences.empty()) {
    auto aud = claims.find("aud");
    if (aud == claims.end()) return "token has no aud";
    auto wanted = [&](const json& v) {
      return std::find(rules.audiences.begin(), rules.audiences.end(),
                       v.get_ref<const std::string&>()) != rules.audiences.end();
    };
    // RFC 7519 §4.1.3: a single string or an array of strings.
    if (aud->is_string())
      return wanted(*aud) ? std::nullopt : std::optional<std::string>("wrong audience");
    if (!aud->is_array() ||
        !std::all_of(aud->begin(), aud->end(), [](const json& v) { return v.is_string(); }))
      return "aud is not a string or an array of strings";
    if (std::none_of(aud->begin(), aud->end(), wanted)) return "wrong audience";
  }
  return std::nullopt;
}

// ---- Signing ----

Result<SigningKey> SigningKey::from_pem(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return fail(errc::too_large, "PEM is over 1 MiB");
  if (pem.find("ENCRYPTED") != std::string_view::npos)
    return fail(errc::unsupported, "encrypted private keys are not supported");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // A callback that refuses: the default one would prompt for a passphrase on the terminal.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return -1; };
  EVP_PKEY* raw =
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr;
  if (!raw) return ossl_fail(errc::invalid_argument, "not a private key PEM");
  PkeyPtr pk(raw, EVP_PKEY_free);
  auto c = classify(raw);
  if (!c) return std::unexpected(c.error());
  SigningKey k;
  k.kind_ = c->kind;
  k.pkey_ = std::move(pk);
  return k;
}

Result<SigningKey> SigningKey::from_secret(std::string secret) {
  auto s = checked_secret(std::move(secret));
  if (!s) return std::unexpected(s.error());
  SigningKey k;
  k.kind_ = KeyKind::hmac;
  k.secret_ = std::move(*s);
  return k;
}

bool SigningKey::accepts(Alg a) const noexcept {
  return kind_accepts(kind_, a);
}

Result<std::string> sign(Alg alg, const SigningKey& key, const json& claims,
                         const json& extra_header) {
  if (!key.accepts(alg))
    return fail(errc::invalid_argument,
                "this key cannot sign " + std::string(name(alg)) + " tokens");
  if (!claims.is_object()) return fail(errc::invalid_argument, "claims must be a JSON object");
  if (!extra_header.is_object() || extra_header.contains("alg"))
    return fail(errc::invalid_argument, "extra header must be an object without \"alg\"");
  json header = {{"alg", std::string(name(alg))}, {"typ", "JWT"}};
  header.update(extra_header);
  std::string input;
  try {
    input = base64url_encode(header.dump()) + '.' + base64url_encode(claims.dump());
  } catch (const json::exception& e) { // invalid UTF-8 in a string
    return fail(errc::invalid_argument, std::string("cannot serialize the token: ") + e.what());
  }
  std::string sig;
  if (family(alg) == Family::hmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!key.secret_ || !hmac(alg, *key.secret_, input, mac, len))
      return fail(errc::invalid_argument, "HMAC failed");
    sig.assign(reinterpret_cast<const char*>(mac), len);
  } else {
    auto s = sign_pkey(alg, key.pkey_.get(), input);
    if (!s) return std::unexpected(s.error());
    sig = std::move(*s);
  }
  return input + '.' + base64url_encode(sig);
}

} // namespace gw::policy::jwt
