#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <tuple>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "gw/policy/jwt.hpp"
#include "support/temp_dir.hpp"
#include "support/test_keys.hpp"

using namespace gw::policy::jwt;
using namespace gwtest;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;

using gwtest::TestKey;

Key pub(const TestKey& k) {
  auto r = Key::from_pem(k.pub_pem);
  REQUIRE(r);
  return *r;
}
SigningKey priv(const TestKey& k) {
  auto r = SigningKey::from_pem(k.priv_pem);
  REQUIRE(r);
  return *r;
}

json claims(std::int64_t exp = kNow + 600) {
  return {{"sub", "alice"}, {"iss", "https://idp.example"}, {"exp", exp}};
}

std::string token(Alg alg, const SigningKey& key, const json& c = claims()) {
  auto t = sign(alg, key, c);
  REQUIRE(t);
  return *t;
}

bool decodes_and_verifies(const std::string& compact, const Key& key) {
  auto t = decode(compact);
  return t && verify(*t, key);
}

// A token assembled by hand, for shapes sign() refuses to produce.
std::string raw_token(std::string_view header, std::string_view payload, std::string_view sig) {
  return base64url_encode(header) + '.' + base64url_encode(payload) + '.' + base64url_encode(sig);
}

std::string bn_bytes(const BIGNUM* bn, int width = 0) {
  std::string out(static_cast<std::size_t>(width ? width : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  return out;
}

std::string bn_param(const TestKey& k, const char* param, int width = 0) {
  BIGNUM* bn = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(k.pk.get(), param, &bn) == 1);
  std::string out = bn_bytes(bn, width);
  BN_free(bn);
  return base64url_encode(out);
}

// ECDSA DER <-> JWS r||s, done here with OpenSSL directly so that the library's own conversion is
// not what checks itself.
std::string der_to_raw(const std::string& der, int n) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(sig != nullptr);
  std::string raw = bn_bytes(ECDSA_SIG_get0_r(sig), n) + bn_bytes(ECDSA_SIG_get0_s(sig), n);
  ECDSA_SIG_free(sig);
  return raw;
}
std::string raw_to_der(const std::string& raw) {
  const int n = static_cast<int>(raw.size() / 2);
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(p, n, nullptr), BN_bin2bn(p + n, n, nullptr));
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

using gwtest::TempDir;

bool run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

} // namespace

TEST_CASE("algorithm names round-trip and none is not an algorithm", "[jwt]") {
  for (auto a : {Alg::HS256, Alg::RS384, Alg::PS512, Alg::ES256, Alg::ES384, Alg::EdDSA})
    CHECK(alg_from_name(name(a)) == a);
  CHECK(name(Alg::RS256) == "RS256");
  CHECK_FALSE(alg_from_name("none"));
  CHECK_FALSE(alg_from_name("None"));
  CHECK_FALSE(alg_from_name("rs256"));
  CHECK_FALSE(alg_from_name("ES512"));
  CHECK_FALSE(alg_from_name(""));
}

TEST_CASE("base64url decoding is strict", "[jwt]") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK(base64url_decode("Zm9vYg") == "foob");
  CHECK(base64url_decode("-_8") == "\xfb\xff");
  CHECK_FALSE(base64url_decode("Zm9vYg==")); // padding is not part of JWS base64url
  CHECK_FALSE(base64url_decode("+/8"));      // the standard alphabet's characters
  CHECK_FALSE(base64url_decode("Zm9 v"));
  CHECK_FALSE(base64url_decode("Zm9vY")); // a length no byte string encodes to
  CHECK_FALSE(base64url_decode("Zh"));    // "Zg" with non-zero unused bits
  CHECK_FALSE(base64url_decode(std::string_view("Zg\0", 3)));
}

TEST_CASE("tokens signed with every algorithm verify with the matching public key", "[jwt]") {
  struct Case {
    Alg alg;
    const TestKey* key; // null: HMAC
  };
  const Case cases[] = {
      {Alg::RS256, &rsa_key()},  {Alg::RS384, &rsa_key()},  {Alg::RS512, &rsa_key()},
      {Alg::PS256, &rsa_key()},  {Alg::PS384, &rsa_key()},  {Alg::PS512, &rsa_key()},
      {Alg::ES256, &p256_key()}, {Alg::ES384, &p384_key()}, {Alg::EdDSA, &ed_key()},
      {Alg::HS256, nullptr},     {Alg::HS384, nullptr},     {Alg::HS512, nullptr},
  };
  for (const auto& c : cases) {
    INFO(name(c.alg));
    auto sk = c.key ? priv(*c.key) : *SigningKey::from_secret("a shared secret of 32+ bytes....");
    auto vk = c.key ? pub(*c.key) : *Key::from_secret("a shared secret of 32+ bytes....");
    CHECK(sk.accepts(c.alg));
    auto compact = sign(c.alg, sk, claims(), {{"kid", "k1"}});
    REQUIRE(compact);
    auto t = decode(*compact);
    REQUIRE(t);
    CHECK(t->alg == c.alg);
    CHECK(t->kid == "k1");
    CHECK(t->header["typ"] == "JWT");
    CHECK(t->claims == claims());
    CHECK(verify(*t, vk));
    CHECK_FALSE(check_claims(t->claims, {}, kNow));
    if (c.alg == Alg::ES256 || c.alg == Alg::ES384)
      CHECK(t->signature.size() == (c.alg == Alg::ES256 ? 64u : 96u));
  }
}

TEST_CASE("a token signed by a different key does not verify", "[jwt]") {
  CHECK_FALSE(decodes_and_verifies(token(Alg::RS256, priv(other_rsa_key())), pub(rsa_key())));
  CHECK_FALSE(decodes_and_verifies(token(Alg::PS256, priv(other_rsa_key())), pub(rsa_key())));
  CHECK_FALSE(decodes_and_verifies(token(Alg::ES256, priv(other_p256_key())), pub(p256_key())));
  auto other_ed = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  CHECK_FALSE(decodes_and_verifies(token(Alg::EdDSA, priv(other_ed)), pub(ed_key())));
  CHECK_FALSE(decodes_and_verifies(token(Alg::HS256, *SigningKey::from_secret("one")),
                                   *Key::from_secret("two")));
}

TEST_CASE("a tampered payload, header or signature does not verify", "[jwt]") {
  for (auto [alg, key] : {std::pair{Alg::RS256, &rsa_key()}, std::pair{Alg::ES256, &p256_key()},
                          std::pair{Alg::EdDSA, &ed_key()}}) {
    INFO(name(alg));
    const std::string good = token(alg, priv(*key));
    const auto dot1 = good.find('.');
    const auto dot2 = good.rfind('.');
    REQUIRE(decodes_and_verifies(good, pub(*key)));

    json evil = claims();
    evil["sub"] = "admin";
    const std::string payload = base64url_encode(evil.dump());
    CHECK_FALSE(
        decodes_and_verifies(good.substr(0, dot1 + 1) + payload + good.substr(dot2), pub(*key)));

    json header = decode(good)->header;
    header["kid"] = "x";
    CHECK_FALSE(
        decodes_and_verifies(base64url_encode(header.dump()) + good.substr(dot1), pub(*key)));

    std::string sig = *base64url_decode(good.substr(dot2 + 1));
    sig[sig.size() / 2] ^= 1;
    CHECK_FALSE(decodes_and_verifies(good.substr(0, dot2 + 1) + base64url_encode(sig), pub(*key)));
  }
}

TEST_CASE("alg none is rejected with or without a signature", "[jwt]") {
  const std::string payload = claims().dump();
  for (const auto* header : {R"({"alg":"none"})", R"({"alg":"none","typ":"JWT"})"}) {
    auto unsigned_token = decode(raw_token(header, payload, ""));
    REQUIRE_FALSE(unsigned_token);
    CHECK(unsigned_token.error().code == gw::errc::unsupported);
    CHECK(unsigned_token.error().message == "alg none is not accepted");
    CHECK_FALSE(decode(raw_token(header, payload, "some bytes")));
  }
  CHECK_FALSE(decode(raw_token(R"({"alg":"None"})", payload, "x")));
  CHECK_FALSE(decode(raw_token(R"({"alg":"NONE"})", payload, "")));
}

TEST_CASE("an HS256 token keyed with the RSA public key PEM does not verify against that key",
          "[jwt]") {
  // The classic confusion attack: the public key is public, so an attacker can HMAC with it.
  const auto& pem = rsa_key().pub_pem;
  const std::string forged = token(Alg::HS256, *SigningKey::from_secret(pem));
  auto t = decode(forged);
  REQUIRE(t);
  const Key rsa = pub(rsa_key());
  CHECK_FALSE(rsa.accepts(Alg::HS256));
  CHECK_FALSE(verify(*t, rsa));
  // The forgery is otherwise well made: the same bytes as an HMAC secret would accept it.
  CHECK(verify(*t, *Key::from_secret(pem)));
}

TEST_CASE("keys accept only the algorithms of their type", "[jwt]") {
  const Key rsa = pub(rsa_key()), p256 = pub(p256_key()), p384 = pub(p384_key()),
            ed = pub(ed_key()), secret = *Key::from_secret("s");
  CHECK(rsa.accepts(Alg::RS256));
  CHECK(rsa.accepts(Alg::PS512));
  CHECK_FALSE(rsa.accepts(Alg::ES256));
  CHECK_FALSE(rsa.accepts(Alg::HS256));
  CHECK(p256.accepts(Alg::ES256));
  CHECK_FALSE(p256.accepts(Alg::ES384));
  CHECK(p384.accepts(Alg::ES384));
  CHECK_FALSE(p384.accepts(Alg::ES256));
  CHECK(ed.accepts(Alg::EdDSA));
  CHECK_FALSE(ed.accepts(Alg::ES256));
  CHECK(secret.accepts(Alg::HS512));
  CHECK_FALSE(secret.accepts(Alg::RS256));
  CHECK_FALSE(secret.accepts(Alg::EdDSA));
  CHECK_FALSE(priv(p256_key()).accepts(Alg::ES384));

  // A PKCS#1 v1.5 signature relabelled as PSS (same key family) still fails.
  std::string rs = token(Alg::RS256, priv(rsa_key()));
  json header = decode(rs)->header;
  header["alg"] = "PS256";
  CHECK_FALSE(decodes_and_verifies(base64url_encode(header.dump()) + rs.substr(rs.find('.')), rsa));

  auto wrong = sign(Alg::ES256, priv(rsa_key()), claims());
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().message == "this key cannot sign ES256 tokens");
}

TEST_CASE("ECDSA signatures of the wrong size or form are rejected", "[jwt]") {
  const std::string good = token(Alg::ES256, priv(p256_key()));
  const std::string prefix = good.substr(0, good.rfind('.') + 1);
  const std::string raw = *base64url_decode(good.substr(good.rfind('.') + 1));
  REQUIRE(raw.size() == 64);
  const Key key = pub(p256_key());
  REQUIRE(decodes_and_verifies(good, key));
  CHECK_FALSE(decodes_and_verifies(prefix + base64url_encode(raw.substr(0, 63)), key));
  CHECK_FALSE(decodes_and_verifies(prefix + base64url_encode(raw + '\0'), key));
  CHECK_FALSE(decodes_and_verifies(prefix + base64url_encode('\0' + raw), key));
  CHECK_FALSE(decodes_and_verifies(prefix + base64url_encode(raw + raw.substr(0, 32)), key));
  // The DER form OpenSSL itself produces is not a JWS signature.
  CHECK_FALSE(decodes_and_verifies(prefix + base64url_encode(raw_to_der(raw)), key));
  CHECK_FALSE(decodes_and_verifies(prefix + base64url_encode(std::string(64, '\0')), key));
}

TEST_CASE("malformed tokens are decode errors", "[jwt]") {
  const std::string h = base64url_encode(R"({"alg":"HS256"})");
  const std::string p = base64url_encode(claims().dump());
  const std::string s = base64url_encode("signature");
  auto error = [](const std::string& t) {
    auto r = decode(t);
    REQUIRE_FALSE(r);
    return r.error().message;
  };
  REQUIRE(decode(h + '.' + p + '.' + s));
  CHECK(error(h + '.' + p) == "token must have three dot-separated parts");
  CHECK(error(h + '.' + p + '.' + s + '.' + s) == "token must have three dot-separated parts");
  CHECK(error("") == "token must have three dot-separated parts");
  CHECK(error(h + '.' + p + '.' + s + '=') == "token is not base64url");
  CHECK(error(h + '.' + p + "+." + s) == "token is not base64url");
  CHECK(error(h + ". " + p + '.' + s) == "token is not base64url");
  CHECK(error(base64url_encode("{not json") + '.' + p + '.' + s) ==
        "token header is not a JSON object");
  CHECK(error(base64url_encode(R"(["HS256"])") + '.' + p + '.' + s) ==
        "token header is not a JSON object");
  CHECK(error(base64url_encode(R"({"typ":"JWT"})") + '.' + p + '.' + s) ==
        "token header has no alg");
  CHECK(error(base64url_encode(R"({"alg":256})") + '.' + p + '.' + s) == "token header has no alg");
  CHECK(error(base64url_encode(R"({"alg":"HS1024"})") + '.' + p + '.' + s) ==
        "token alg is not supported");
  CHECK(error(base64url_encode(R"({"alg":"RS256","crit":["exp"],"exp":1})") + '.' + p + '.' + s) ==
        "token header has crit, which is not supported");
  CHECK(error(base64url_encode(R"({"alg":"RS256","kid":7})") + '.' + p + '.' + s) ==
        "token kid is not a string");
  CHECK(error(h + '.' + base64url_encode("[1,2]") + '.' + s) ==
        "token claims are not a JSON object");
  CHECK(error(h + '.' + base64url_encode("\"sub\"") + '.' + s) ==
        "token claims are not a JSON object");
  CHECK(error(h + '.' + base64url_encode("{\"a\":") + '.' + s) ==
        "token claims are not a JSON object");
  CHECK(error(h + '.' + p + '.') == "token has no signature");

  json big = claims();
  big["pad"] = std::string(16 * 1024, 'x');
  auto huge = decode(h + '.' + base64url_encode(big.dump()) + '.' + s);
  REQUIRE_FALSE(huge);
  CHECK(huge.error().code == gw::errc::too_large);
  CHECK_FALSE(decode(std::string(kMaxTokenBytes + 1, 'a')));
}

TEST_CASE("exp and nbf are checked with leeway, exactly at the boundaries", "[jwt]") {
  ClaimRules rules;
  const json c = {{"exp", kNow + 10}, {"nbf", kNow - 10}};
  CHECK_FALSE(check_claims(c, rules, kNow));
  CHECK_FALSE(check_claims(c, rules, kNow + 9));
  CHECK(check_claims(c, rules, kNow + 10) == "token expired"); // invalid on or after exp
  CHECK_FALSE(check_claims(c, rules, kNow - 10));              // valid from nbf on
  CHECK(check_claims(c, rules, kNow - 11) == "token not yet valid");

  rules.leeway_s = 30;
  CHECK_FALSE(check_claims(c, rules, kNow + 39));
  CHECK(check_claims(c, rules, kNow + 40) == "token expired");
  CHECK_FALSE(check_claims(c, rules, kNow - 40));
  CHECK(check_claims(c, rules, kNow - 41) == "token not yet valid");

  CHECK_FALSE(check_claims({{"exp", kNow + 0.5}}, {}, kNow)); // NumericDate may be fractional
  CHECK(check_claims({{"exp", kNow - 0.5}}, {}, kNow) == "token expired");
}

TEST_CASE("missing or non-numeric times are reported", "[jwt]") {
  ClaimRules rules;
  CHECK(check_claims({{"sub", "a"}}, rules, kNow) == "token has no exp");
  CHECK(check_claims(json::object(), rules, kNow) == "token has no exp");
  CHECK(check_claims({{"exp", std::to_string(kNow + 60)}}, rules, kNow) == "exp is not a number");
  CHECK(check_claims({{"exp", true}}, rules, kNow) == "exp is not a number");
  CHECK(check_claims({{"exp", kNow + 60}, {"nbf", "0"}}, rules, kNow) == "nbf is not a number");
  CHECK(check_claims({{"exp", kNow + 60}, {"iat", nullptr}}, rules, kNow) == "iat is not a number");
  CHECK(check_claims(json::array(), rules, kNow) == "claims are not an object");
  rules.require_exp = false;
  CHECK_FALSE(check_claims({{"sub", "a"}}, rules, kNow));
  CHECK(check_claims({{"exp", "soon"}}, rules, kNow) == "exp is not a number");
}

TEST_CASE("issuer and audience must match one of the configured values", "[jwt]") {
  ClaimRules rules;
  rules.issuers = {"https://a.example", "https://b.example"};
  rules.audiences = {"api", "admin"};
  json c = {{"exp", kNow + 60}, {"iss", "https://b.example"}, {"aud", "api"}};
  CHECK_FALSE(check_claims(c, rules, kNow));

  SECTION("issuer") {
    c["iss"] = "https://evil.example";
    CHECK(check_claims(c, rules, kNow) == "wrong issuer");
    c["iss"] = "https://A.example";
    CHECK(check_claims(c, rules, kNow) == "wrong issuer");
    c["iss"] = json::array({"https://a.example"});
    CHECK(check_claims(c, rules, kNow) == "iss is not a string");
    c.erase("iss");
    CHECK(check_claims(c, rules, kNow) == "token has no iss");
  }
  SECTION("audience as a string") {
    c["aud"] = "web";
    CHECK(check_claims(c, rules, kNow) == "wrong audience");
    c.erase("aud");
    CHECK(check_claims(c, rules, kNow) == "token has no aud");
  }
  SECTION("audience as an array") {
    c["aud"] = {"web", "admin"};
    CHECK_FALSE(check_claims(c, rules, kNow));
    c["aud"] = {"web", "mobile"};
    CHECK(check_claims(c, rules, kNow) == "wrong audience");
    c["aud"] = json::array();
    CHECK(check_claims(c, rules, kNow) == "wrong audience");
    c["aud"] = {"api", 5};
    CHECK(check_claims(c, rules, kNow) == "aud is not a string or an array of strings");
  }
  SECTION("no rules: any issuer and audience") {
    c["iss"] = 5;
    c["aud"] = {{"x", 1}};
    CHECK_FALSE(check_claims(c, ClaimRules{}, kNow));
  }
}

TEST_CASE("tokens signed by the openssl tool verify", "[jwt]") {
  TempDir dir;
  // `command` names its files as {key}, {in} and {sig}.
  auto check = [&](Alg alg, const TestKey& key, std::string command, int ec_size = 0) {
    INFO(command);
    const std::string in = base64url_encode(json{{"alg", std::string(name(alg))}}.dump()) + '.' +
                           base64url_encode(claims().dump());
    for (auto [var, file, data] : {std::tuple{"{key}", "key.pem", std::string_view(key.priv_pem)},
                                   std::tuple{"{in}", "in.txt", std::string_view(in)},
                                   std::tuple{"{sig}", "sig.bin", std::string_view()}})
      command.replace(command.find(var), std::string_view(var).size(),
                      "'" + dir.write(file, data).string() + "'");
    REQUIRE(run(command));
    std::string sig = dir.read("sig.bin");
    if (ec_size) sig = der_to_raw(sig, ec_size);
    CHECK(decodes_and_verifies(in + '.' + base64url_encode(sig), pub(key)));
  };
  check(Alg::RS256, rsa_key(), "openssl dgst -sha256 -sign {key} -out {sig} {in}");
  check(Alg::RS512, rsa_key(), "openssl dgst -sha512 -sign {key} -out {sig} {in}");
  check(Alg::PS256, rsa_key(),
        "openssl dgst -sha256 -sign {key} -sigopt rsa_padding_mode:pss "
        "-sigopt rsa_pss_saltlen:digest -sigopt rsa_mgf1_md:sha256 -out {sig} {in}");
  check(Alg::ES256, p256_key(), "openssl dgst -sha256 -sign {key} -out {sig} {in}", 32);
  check(Alg::ES384, p384_key(), "openssl dgst -sha384 -sign {key} -out {sig} {in}", 48);
  // Ed25519 signs the message itself, not a digest: pkeyutl's raw-input mode.
  check(Alg::EdDSA, ed_key(), "openssl pkeyutl -sign -rawin -inkey {key} -in {in} -out {sig}");
}

TEST_CASE("tokens signed here verify with the openssl tool", "[jwt]") {
  TempDir dir;
  auto check = [&](Alg alg, const TestKey& key, const std::string& digest) {
    INFO(name(alg));
    const std::string t = token(alg, priv(key));
    const auto dot2 = t.rfind('.');
    std::string sig = *base64url_decode(t.substr(dot2 + 1));
    if (alg == Alg::ES256) sig = raw_to_der(sig);
    dir.write("in.txt", t.substr(0, dot2));
    dir.write("sig.bin", sig);
    dir.write("pub.pem", key.pub_pem);
    CHECK(run("openssl dgst -" + digest + " -verify '" + dir.file("pub.pem") + "' -signature '" +
              dir.file("sig.bin") + "' '" + dir.file("in.txt") + "'"));
  };
  check(Alg::RS256, rsa_key(), "sha256");
  check(Alg::ES256, p256_key(), "sha256");
}

TEST_CASE("published example tokens verify (RFC 7515 A.1, RFC 8037 A.4)", "[jwt]") {
  // HS256, with CRLFs inside the JSON: the signature covers the bytes as sent.
  const std::string hs =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  auto hk = Key::from_jwk({{"kty", "oct"},
                           {"k", "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0i"
                                 "PS4hcgUuTwjAzZr1Z9CAow"}});
  REQUIRE(hk);
  auto t = decode(hs);
  REQUIRE(t);
  CHECK(t->claims["iss"] == "joe");
  CHECK(verify(*t, *hk));
  CHECK(check_claims(t->claims, {}, kNow) == "token expired");

  // Ed25519: the payload is not JSON, so the Token is assembled directly.
  auto ek = Key::from_jwk(
      {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}});
  REQUIRE(ek);
  Token ed{Alg::EdDSA,
           "",
           json::object(),
           json::object(),
           "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
           *base64url_decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsP"
                             "t9g7sVvpAr_MuM0KAg")};
  CHECK(verify(ed, *ek));
  ed.signing_input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd";
  CHECK_FALSE(verify(ed, *ek));
}

TEST_CASE("JWKs built from generated keys verify tokens signed by the private key", "[jwt]") {
  const json rsa = {{"kty", "RSA"},
                    {"kid", "r1"},
                    {"alg", "RS256"},
                    {"use", "sig"},
                    {"n", bn_param(rsa_key(), OSSL_PKEY_PARAM_RSA_N)},
                    {"e", bn_param(rsa_key(), OSSL_PKEY_PARAM_RSA_E)}};
  const json p256 = {{"kty", "EC"},
                     {"crv", "P-256"},
                     {"kid", "e1"},
                     {"x", bn_param(p256_key(), OSSL_PKEY_PARAM_EC_PUB_X, 32)},
                     {"y", bn_param(p256_key(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)}};
  const json p384 = {{"kty", "EC"},
                     {"crv", "P-384"},
                     {"x", bn_param(p384_key(), OSSL_PKEY_PARAM_EC_PUB_X, 48)},
                     {"y", bn_param(p384_key(), OSSL_PKEY_PARAM_EC_PUB_Y, 48)}};
  unsigned char x[32];
  std::size_t xlen = 0;
  REQUIRE(EVP_PKEY_get_octet_string_param(ed_key().pk.get(), OSSL_PKEY_PARAM_PUB_KEY, x, sizeof x,
                                          &xlen) == 1);
  const json ed = {{"kty", "OKP"},
                   {"crv", "Ed25519"},
                   {"x", base64url_encode({reinterpret_cast<const char*>(x), xlen})}};

  SECTION("each key type") {
    auto rk = Key::from_jwk(rsa);
    REQUIRE(rk);
    CHECK(rk->kid() == "r1");
    CHECK(rk->alg() == Alg::RS256);
    CHECK(rk->describe() == "RSA 2048");
    CHECK(decodes_and_verifies(token(Alg::RS256, priv(rsa_key())), *rk));
    // The JWK's alg pins the algorithm: the same key may not check PS256 tokens.
    CHECK_FALSE(rk->accepts(Alg::PS256));
    CHECK_FALSE(decodes_and_verifies(token(Alg::PS256, priv(rsa_key())), *rk));

    auto ek = Key::from_jwk(p256);
    REQUIRE(ek);
    CHECK_FALSE(ek->alg());
    CHECK(decodes_and_verifies(token(Alg::ES256, priv(p256_key())), *ek));
    auto e384 = Key::from_jwk(p384);
    REQUIRE(e384);
    CHECK(decodes_and_verifies(token(Alg::ES384, priv(p384_key())), *e384));
    auto okp = Key::from_jwk(ed);
    REQUIRE(okp);
    CHECK(decodes_and_verifies(token(Alg::EdDSA, priv(ed_key())), *okp));
    auto oct = Key::from_jwk({{"kty", "oct"}, {"k", base64url_encode("secret!")}});
    REQUIRE(oct);
    CHECK(decodes_and_verifies(token(Alg::HS384, *SigningKey::from_secret("secret!")), *oct));
  }
  SECTION("a private JWK is accepted and only its public part used") {
    json full = rsa;
    full["d"] = bn_param(rsa_key(), OSSL_PKEY_PARAM_RSA_D);
    auto k = Key::from_jwk(full);
    REQUIRE(k);
    CHECK(decodes_and_verifies(token(Alg::RS256, priv(rsa_key())), *k));
  }
  SECTION("malformed or unusable JWKs are errors") {
    auto error = [](const json& j) {
      auto k = Key::from_jwk(j);
      REQUIRE_FALSE(k);
      return k.error().message;
    };
    json bad = rsa;
    bad["alg"] = "ES256";
    CHECK(error(bad) == "JWK \"alg\" ES256 does not fit its RSA 2048");
    bad["alg"] = "RSA-OAEP";
    CHECK(error(bad) == "JWK \"alg\" is not a supported JWS algorithm");
    bad = rsa;
    bad["use"] = "enc";
    CHECK(error(bad) == "JWK \"use\" is not \"sig\"");
    bad = rsa;
    bad.erase("e");
    CHECK(error(bad) == "JWK has no \"e\" string");
    bad = rsa;
    bad["n"] = "not base64url!";
    CHECK(error(bad) == "JWK \"n\" is not base64url");
    bad = p256;
    bad["x"] = base64url_encode(std::string(31, '\1'));
    CHECK(error(bad) == "EC JWK coordinates must be 32 bytes each");
    bad = p256;
    bad["y"] = bad["x"]; // (x, x) is not on the curve
    CHECK_FALSE(Key::from_jwk(bad));
    bad = p256;
    bad["crv"] = "P-521";
    CHECK(error(bad) == "EC JWK crv must be P-256 or P-384");
    CHECK(error({{"kty", "oct"}, {"k", ""}}) == "JWK \"k\" is not base64url");
    CHECK(error({{"kty", "OKP"}, {"crv", "X25519"}, {"x", ed["x"]}}) ==
          "OKP JWK crv must be Ed25519");
    CHECK(error({{"kty", "RSA"}, {"key_ops", {"encrypt"}}}) ==
          "JWK \"key_ops\" does not include \"verify\"");
    CHECK(error({{"kty", "PQC"}}) == "unsupported kty \"PQC\"");
    CHECK(error(json::array()) == "a JWK must be a JSON object");
  }
}

TEST_CASE("parse_jwks keeps usable keys and explains the skipped ones", "[jwt]") {
  const json rsa = {{"kty", "RSA"},
                    {"kid", "r1"},
                    {"n", bn_param(rsa_key(), OSSL_PKEY_PARAM_RSA_N)},
                    {"e", bn_param(rsa_key(), OSSL_PKEY_PARAM_RSA_E)}};
  json enc = rsa;
  enc["kid"] = "r2";
  enc["use"] = "enc";
  const json ec = {{"kty", "EC"},
                   {"crv", "P-256"},
                   {"kid", "e1"},
                   {"use", "sig"},
                   {"x", bn_param(p256_key(), OSSL_PKEY_PARAM_EC_PUB_X, 32)},
                   {"y", bn_param(p256_key(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)}};
  const json doc = {{"keys",
                     {rsa,
                      enc,
                      {{"kty", "ML-DSA"}, {"kid", "pq"}},
                      ec,
                      42,
                      {{"kty", "oct"}, {"k", "c2VjcmV0"}}}}};
  auto set = parse_jwks(doc.dump());
  REQUIRE(set);
  REQUIRE(set->keys.size() == 3);
  CHECK(set->keys[0].kid() == "r1");
  CHECK(set->keys[1].kid() == "e1");
  CHECK(set->keys[2].describe() == "HMAC secret");
  REQUIRE(set->skipped.size() == 3);
  CHECK(set->skipped[0] == "keys[1] (kid \"r2\"): JWK \"use\" is not \"sig\"");
  CHECK(set->skipped[1] == "keys[2] (kid \"pq\"): unsupported kty \"ML-DSA\"");
  CHECK(set->skipped[2] == "keys[4]: a JWK must be a JSON object");

  // The kid in a token picks the key; each verifies only its own tokens.
  const std::string compact = *sign(Alg::ES256, priv(p256_key()), claims(), {{"kid", "e1"}});
  auto es = decode(compact); // views `compact`, which must outlive it
  REQUIRE(es);
  for (const auto& k : set->keys)
    CHECK(verify(*es, k) == (k.kid() == es->kid));

  CHECK(parse_jwks(R"({"keys":[]})")->keys.empty());
  CHECK_FALSE(parse_jwks("{"));
  CHECK_FALSE(parse_jwks(R"({"keys":{}})"));
  CHECK_FALSE(parse_jwks("[]"));
}

TEST_CASE("PEM keys: certificates work, weak, private and foreign keys are refused", "[jwt]") {
  SECTION("an X.509 certificate gives its public key") {
    TempDir dir;
    const std::string key = dir.write("key.pem", p256_key().priv_pem);
    REQUIRE(run("openssl req -x509 -new -key " + key + " -subj /CN=jwt-test -days 1 -out '" +
                dir.file("cert.pem") + "'"));
    auto k = Key::from_pem(dir.read("cert.pem"));
    REQUIRE(k);
    CHECK(k->describe() == "EC P-256");
    CHECK(decodes_and_verifies(token(Alg::ES256, priv(p256_key())), *k));
  }
  SECTION("RSA keys under 2048 bits") {
    auto weak = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}));
    auto k = Key::from_pem(weak.pub_pem);
    REQUIRE_FALSE(k);
    CHECK(k.error().message == "RSA key has 1024 bits; at least 2048 are required");
    BIGNUM* n = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(weak.pk.get(), OSSL_PKEY_PARAM_RSA_N, &n) == 1);
    const json jwk = {{"kty", "RSA"}, {"n", base64url_encode(bn_bytes(n))}, {"e", "AQAB"}};
    BN_free(n);
    CHECK_FALSE(Key::from_jwk(jwk));
    CHECK_FALSE(SigningKey::from_pem(weak.priv_pem));
  }
  SECTION("other keys and non-keys") {
    auto k = Key::from_pem(rsa_key().priv_pem);
    REQUIRE_FALSE(k);
    CHECK(k.error().message ==
          "this PEM holds a private key; give the public key (openssl pkey -pubout)");
    auto k1 = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1"));
    CHECK(Key::from_pem(k1.pub_pem).error().code == gw::errc::unsupported);
    auto x = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
    CHECK(Key::from_pem(x.pub_pem).error().code == gw::errc::unsupported);
    CHECK_FALSE(Key::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
    CHECK_FALSE(Key::from_pem(""));
    CHECK_FALSE(SigningKey::from_pem(rsa_key().pub_pem));
    CHECK_FALSE(Key::from_secret(""));
    CHECK_FALSE(SigningKey::from_secret(""));
  }
  SECTION("encrypted private keys are refused without prompting") {
    BIO* bio = BIO_new(BIO_s_mem());
    char pass[] = "passphrase";
    REQUIRE(PEM_write_bio_PrivateKey(bio, p256_key().pk.get(), EVP_aes_256_cbc(),
                                     reinterpret_cast<unsigned char*>(pass), 10, nullptr,
                                     nullptr) == 1);
    auto k = SigningKey::from_pem(take_bio(bio));
    REQUIRE_FALSE(k);
    CHECK(k.error().code == gw::errc::unsupported);
  }
}

TEST_CASE("describe names the key type and never key material", "[jwt]") {
  CHECK(pub(rsa_key()).describe() == "RSA 2048");
  CHECK(pub(p256_key()).describe() == "EC P-256");
  CHECK(pub(p384_key()).describe() == "EC P-384");
  CHECK(pub(ed_key()).describe() == "Ed25519");
  CHECK(Key::from_secret("hunter2")->describe() == "HMAC secret");
  CHECK(Key::from_pem(rsa_key().pub_pem)->kid().empty());
}

TEST_CASE("sign refuses claims and headers it cannot produce", "[jwt]") {
  const auto key = *SigningKey::from_secret("s");
  CHECK_FALSE(sign(Alg::HS256, key, json::array()));
  CHECK_FALSE(sign(Alg::HS256, key, claims(), {{"alg", "none"}}));
  CHECK_FALSE(sign(Alg::HS256, key, claims(), json::array()));
  CHECK_FALSE(sign(Alg::HS256, key, {{"sub", "\xff"}})); // not UTF-8
  auto t = sign(Alg::HS256, key, claims(), {{"typ", "at+jwt"}, {"kid", "k"}});
  REQUIRE(t);
  CHECK(decode(*t)->header == json{{"alg", "HS256"}, {"typ", "at+jwt"}, {"kid", "k"}});
}
