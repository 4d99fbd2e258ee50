// gwctl key new|hash and gwctl jwt sign: the credentials the policies check, made without
// hand-rolled shell pipelines. Keys come from OpenSSL's CSPRNG; only their SHA-256 is ever written
// to a keys file or a table.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>

#include <openssl/rand.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "gw/core/file.hpp"
#include "gw/core/text.hpp"
#include "gw/core/units.hpp"
#include "gw/policy/jwt.hpp"
#include "gw/policy/settings.hpp"

namespace gwctl {
namespace {

namespace jwt = gw::policy::jwt;
using nlohmann::json;

bool valid_consumer(const std::string& c) {
  if (c.empty() || c.size() > 128) return false;
  for (char ch : c)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' ||
          ch == '@' || ch == ':'))
      return false;
  return true;
}

int bad_consumer(const std::string& c) {
  std::fprintf(stderr, "gwctl: consumer \"%s\": expected 1 to 128 letters, digits and _ - . @ :\n",
               c.c_str());
  return kFailed; // a well-formed command line with an invalid value in it
}

/// True when `file` exists, is not empty and does not end in a newline (an editor may leave it so).
bool lacks_final_newline(const std::string& file) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in || in.tellg() <= 0) return false;
  in.seekg(-1, std::ios::end);
  char last = '\n';
  in.get(last);
  return last != '\n';
}

int append_line(const std::string& file, const std::string& line) {
  // Otherwise the new line would be glued to the last one, spoiling both.
  const bool newline_first = lacks_final_newline(file);
  std::ofstream out(file, std::ios::app);
  if (newline_first) out << "\n";
  out << line << "\n";
  out.flush();
  if (!out) {
    std::fprintf(stderr, "gwctl: %s: cannot append the key's line\n", file.c_str());
    return kIoError;
  }
  return kOk;
}

/// The algorithm a key signs with when --alg is not given: the one its type allows (RSA: RS256,
/// the JWT default; EC P-256: ES256; P-384: ES384; Ed25519: EdDSA), HS256 for a secret.
jwt::Alg default_alg(const jwt::SigningKey& key) {
  for (const auto a : {jwt::Alg::RS256, jwt::Alg::ES256, jwt::Alg::ES384, jwt::Alg::EdDSA})
    if (key.accepts(a)) return a;
  return jwt::Alg::HS256;
}

} // namespace

int run_key_new(const Global&, const KeyOptions& o) {
  if (!valid_consumer(o.consumer)) return bad_consumer(o.consumer);
  if (o.bytes < 16 || o.bytes > 64) {
    std::fprintf(stderr, "gwctl: --bytes %u: expected 16 to 64\n", o.bytes);
    return kUsage;
  }
  std::string raw(o.bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1) {
    std::fprintf(stderr, "gwctl: the system's random generator failed\n");
    return kFailed;
  }
  const std::string key = jwt::base64url_encode(raw);
  const std::string line = gw::policy::key_file_line(o.consumer, key);
  if (!o.append.empty())
    if (int rc = append_line(o.append, line); rc != kOk) return rc;
  if (o.json) {
    std::printf("%s\n",
                json{{"consumer", o.consumer}, {"key", key}, {"line", line}}.dump().c_str());
  } else if (!o.append.empty()) {
    std::printf("%s\n", key.c_str());
    std::fprintf(stderr, "added \"%s sha256:...\" to %s; recompile and reload to serve it\n",
                 o.consumer.c_str(), o.append.c_str());
  } else {
    std::printf("%s\n", key.c_str());
    std::fprintf(stderr, "give the key to %s; put this line in the keys file:\n%s\n",
                 o.consumer.c_str(), line.c_str());
  }
  return kOk;
}

int run_key_hash(const Global&, const KeyOptions& o) {
  if (!valid_consumer(o.consumer)) return bad_consumer(o.consumer);
  std::string input;
  std::getline(std::cin, input);
  if (!input.empty() && input.back() == '\r') input.pop_back();
  const std::string key(gw::text::trim(input));
  if (key.empty()) {
    std::fprintf(stderr, "gwctl: key hash reads the key from standard input, and got none\n");
    return kUsage;
  }
  const std::string line = gw::policy::key_file_line(o.consumer, key);
  if (!o.append.empty()) return append_line(o.append, line);
  std::printf("%s\n", line.c_str());
  return kOk;
}

int run_jwt_sign(const Global&, const JwtSignOptions& o) {
  std::optional<jwt::Alg> alg;
  if (!o.alg.empty()) {
    alg = jwt::alg_from_name(o.alg);
    if (!alg) {
      std::fprintf(stderr, "gwctl: --alg %s: expected one of %s\n", o.alg.c_str(),
                   gw::text::join(jwt::alg_names(), ", ").c_str());
      return kUsage;
    }
  }
  const int sources = !o.key.empty() + !o.secret_file.empty() + !o.secret_env.empty();
  if (sources != 1) {
    std::fprintf(stderr,
                 "gwctl: give exactly one of --key PEM-FILE, --secret-file or --secret-env\n");
    return kUsage;
  }
  gw::Result<jwt::SigningKey> key = std::unexpected(gw::Error{});
  if (!o.secret_env.empty() || !o.secret_file.empty()) {
    auto secret = gw::policy::read_hmac_secret(o.secret_env, o.secret_file);
    if (!secret) {
      std::fprintf(stderr, "gwctl: %s\n", secret.error().message.c_str());
      if (!o.secret_env.empty()) return kUsage; // the variable is not set
      return secret.error().code == gw::errc::invalid_argument ? kFailed : kIoError;
    }
    key = jwt::SigningKey::from_secret(std::move(*secret));
  } else {
    auto pem = gw::file::read_all(o.key, 1 << 20);
    if (!pem) {
      std::fprintf(stderr, "gwctl: %s\n", pem.error().to_string().c_str());
      return kIoError;
    }
    key = jwt::SigningKey::from_pem(*pem);
  }
  if (!key) {
    std::fprintf(stderr, "gwctl: %s\n", key.error().message.c_str());
    return kFailed;
  }
  if (!alg) alg = default_alg(*key);

  json claims = json::object();
  if (!o.claims.empty()) {
    claims = json::parse(o.claims, nullptr, false);
    if (claims.is_discarded() || !claims.is_object()) {
      std::fprintf(stderr,
                   "gwctl: --claims: expected a JSON object, e.g. '{\"scope\":\"read\"}'\n");
      return kUsage;
    }
  }
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (!o.subject.empty()) claims["sub"] = o.subject;
  if (!o.issuer.empty()) claims["iss"] = o.issuer;
  if (!o.audience.empty()) claims["aud"] = o.audience;
  if (!claims.contains("iat")) claims["iat"] = now;
  if (o.no_exp && claims.contains("exp")) {
    std::fprintf(stderr, "gwctl: --no-exp, but --claims sets exp\n");
    return kUsage;
  }
  if (!o.expires_in.empty()) {
    auto d = gw::units::parse_duration(o.expires_in);
    if (!d) {
      std::fprintf(stderr, "gwctl: --expires-in: %s\n", d.error().message.c_str());
      return kUsage;
    }
    claims["exp"] = now + d->count() / 1000;
  }
  // Such a token looks fine and is refused: gwd's jwt policy requires exp by default.
  const bool warn_no_exp = !o.no_exp && !claims.contains("exp");
  json header = json::object();
  if (!o.kid.empty()) header["kid"] = o.kid;
  auto token = jwt::sign(*alg, *key, claims, header);
  if (!token) {
    std::fprintf(stderr, "gwctl: %s\n", token.error().message.c_str());
    return kFailed;
  }
  std::printf("%s\n", token->c_str());
  if (warn_no_exp)
    std::fprintf(stderr, "gwctl: warning: the token has no exp, so gwd refuses it unless the "
                         "policy sets require_exp = false; give --expires-in (e.g. 1h), or "
                         "--no-exp to mean it\n");
  return kOk;
}

} // namespace gwctl
