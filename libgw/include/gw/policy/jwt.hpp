// JSON Web Tokens (RFC 7515 JWS compact form, RFC 7519 claims, RFC 7517/7518 keys): decoding,
// signature verification against PEM, JWK or JWKS keys, and claim checks for the `jwt` policy.
// Signing exists for tests and `gwctl jwt sign`. Everything here is pure: no I/O, no clock (the
// caller passes `now`), no exceptions. Read next: settings.hpp (policy::Jwt).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/error.hpp"

struct evp_pkey_st; // OpenSSL's EVP_PKEY, kept out of this header

namespace gw::policy::jwt {

/// The JWS algorithms gw implements (RFC 7518 §3, RFC 8037 for EdDSA with Ed25519 only).
// clang-format off
enum class Alg : std::uint8_t {
  HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA
};
// clang-format on

/// "RS256" -> Alg::RS256. "none" and unknown names -> nullopt.
std::optional<Alg> alg_from_name(std::string_view s);
std::string_view name(Alg a) noexcept;
/// Every algorithm's name, in Alg order: for messages and defaults.
std::vector<std::string> alg_names();

/// Base64url without padding (RFC 7515 §2).
std::string base64url_encode(std::string_view bytes);
/// Strict: rejects '=', characters outside [A-Za-z0-9_-], impossible lengths and non-zero unused
/// bits (so one token has exactly one encoding).
std::optional<std::string> base64url_decode(std::string_view s);

struct Token;

namespace detail {
enum class KeyKind : std::uint8_t { rsa, ec_p256, ec_p384, ed25519, hmac };
} // namespace detail

/// A verification key (public key or HMAC secret). Immutable and cheap to copy (copies share the
/// EVP_PKEY or secret); any thread.
class Key {
public:
  /// SubjectPublicKeyInfo PEM ("PUBLIC KEY") or an X.509 certificate PEM (its key is used; the
  /// certificate itself is not validated). RSA >= 2048 bits, EC P-256/P-384, Ed25519.
  static Result<Key> from_pem(std::string_view pem);
  /// An HMAC secret for HS*. Refuses an empty secret.
  static Result<Key> from_secret(std::string secret);
  /// kty RSA (n, e), EC (crv P-256/P-384, x, y), OKP (crv Ed25519, x) or oct (k). Keeps "kid"
  /// and "alg"; refuses "use" other than "sig" and an "alg" the key type cannot do. Private
  /// members (d, p, ...) are ignored: only the public part is imported.
  static Result<Key> from_jwk(const nlohmann::json& jwk);

  const std::string& kid() const noexcept { return kid_; }
  /// The JWK's "alg", if it had one.
  std::optional<Alg> alg() const noexcept { return alg_; }
  /// Whether a token with this alg may be checked with this key: RSA does RS*/PS*, P-256 ES256,
  /// P-384 ES384, Ed25519 EdDSA, a secret HS*; and the JWK's "alg", when set, must match.
  bool accepts(Alg a) const noexcept;
  /// An HMAC secret (from_secret, or a JWK of kty "oct") rather than a public key.
  bool is_secret() const noexcept { return kind_ == detail::KeyKind::hmac; }
  /// "RSA 2048", "EC P-256", "Ed25519", "HMAC secret": for gwctl; never prints key material.
  std::string describe() const;

private:
  friend bool verify(const Token& t, const Key& k) noexcept;
  Key() = default;
  detail::KeyKind kind_ = detail::KeyKind::hmac;
  int bits_ = 0;
  std::shared_ptr<evp_pkey_st> pkey_;         // null for HMAC
  std::shared_ptr<const std::string> secret_; // HMAC only; wiped when the last copy goes
  std::string kid_;
  std::optional<Alg> alg_;
};

/// A JWKS document ({"keys": [...]}). Keys that cannot be used (unknown kty or crv, "use":"enc",
/// RSA under 2048 bits, malformed members) are skipped, each with a reason in `skipped`.
struct KeySet {
  std::vector<Key> keys;
  std::vector<std::string> skipped;
};
/// Fails only when the document is not JSON or has no "keys" array; `keys` may come back empty.
Result<KeySet> parse_jwks(std::string_view json);

/// A compact JWS, decoded but not yet verified. `signing_input` views the caller's token string,
/// which must outlive the Token.
struct Token {
  Alg alg;
  std::string kid;                // "" when absent
  nlohmann::json header, claims;  // both JSON objects
  std::string_view signing_input; // "header.payload"
  std::string signature;          // raw bytes (base64url-decoded)
};

/// Tokens above this size are refused before any decoding.
inline constexpr std::size_t kMaxTokenBytes = 16 * 1024;

/// Splits and decodes a compact JWS: exactly three strict base64url parts, a header object with a
/// known "alg" (never "none"), no "crit", a claims object and a non-empty signature.
/// Errors: errc::too_large, errc::unsupported (alg, crit), errc::invalid_argument (the rest).
Result<Token> decode(std::string_view compact);

/// Checks the signature. False when !k.accepts(t.alg) (this is what stops algorithm confusion) or
/// on any mismatch. Constant-time comparison for HMAC.
bool verify(const Token& t, const Key& k) noexcept;

struct ClaimRules {
  std::vector<std::string> issuers;   // empty: any; else "iss" must be one of them
  std::vector<std::string> audiences; // empty: any; else "aud" (string or array) must hold one
  std::int64_t leeway_s = 0;          // applied to exp and nbf
  bool require_exp = true;
};

/// nullopt when `claims` are acceptable at `now` (seconds since the epoch); otherwise a short
/// reason fit for logs and WWW-Authenticate's error_description (no quotes, no claim values):
/// "token expired", "token not yet valid", "token has no exp", "wrong issuer", "wrong audience",
/// "exp is not a number", ...
std::optional<std::string> check_claims(const nlohmann::json& claims, const ClaimRules& rules,
                                        std::int64_t now);

/// A private key (PEM, PKCS#8 or traditional; unencrypted) or an HMAC secret, for sign().
/// Immutable, cheap to copy; any thread.
class SigningKey {
public:
  static Result<SigningKey> from_pem(std::string_view pem);
  static Result<SigningKey> from_secret(std::string secret);
  bool accepts(Alg a) const noexcept;

private:
  friend Result<std::string> sign(Alg, const SigningKey&, const nlohmann::json&,
                                  const nlohmann::json&);
  SigningKey() = default;
  detail::KeyKind kind_ = detail::KeyKind::hmac;
  std::shared_ptr<evp_pkey_st> pkey_;
  std::shared_ptr<const std::string> secret_;
};

/// A compact JWS with header {"alg", "typ":"JWT"} plus `extra_header` (e.g. "kid"; it may not set
/// "alg"). `claims` must be an object. Fails if the key cannot do `alg`.
Result<std::string> sign(Alg alg, const SigningKey& key, const nlohmann::json& claims,
                         const nlohmann::json& extra_header = nlohmann::json::object());

} // namespace gw::policy::jwt
