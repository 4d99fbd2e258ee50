// What settings.hpp declares beyond the kinds' readers (those are in kinds/*.cpp): HMAC secrets
// and keys-file lines, shared by gwd's jwt factory and gwctl.
#include "gw/policy/settings.hpp"

#include <cstdlib>

#include "gw/core/file.hpp"
#include "gw/core/text.hpp"

namespace gw::policy {

Result<std::string> read_hmac_secret(const std::string& env_name, const std::string& file) {
  constexpr std::uint64_t kMaxSecret = 64 * 1024;
  if (!env_name.empty()) {
    const char* v = std::getenv(env_name.c_str());
    if (!v || !*v) return fail(errc::not_found, "environment variable " + env_name + " is not set");
    return std::string(v);
  }
  if (file.empty()) return fail(errc::invalid_argument, "no HMAC secret given");
  auto secret = file::read_all(file, kMaxSecret);
  if (!secret)
    return std::unexpected(Error(secret.error().code, "secret file " + text::quote(file) + ": " +
                                                          secret.error().message));
  while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r'))
    secret->pop_back();
  if (secret->empty())
    return fail(errc::invalid_argument, "secret file " + text::quote(file) + " is empty");
  return secret;
}

std::string key_file_line(std::string_view consumer, std::string_view key) {
  return std::string(consumer) + " sha256:" + to_hex(sha256(key));
}

} // namespace gw::policy
