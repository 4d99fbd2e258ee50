#include "gw/core/error.hpp"

namespace gw {
namespace {

class GwCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "gw"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
    case errc::ok:
      return "ok";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::io_error:
      return "io_error";
    case errc::too_large:
      return "too_large";
    case errc::not_found:
      return "not_found";
    case errc::unsupported:
      return "unsupported";
    }
    return "unknown";
  }
};

} // namespace

const std::error_category& gw_category() noexcept {
  static const GwCategory cat;
  return cat;
}

std::string Error::code_name() const {
  std::string out = code.category().name();
  out += '.';
  out += code.message();
  return out;
}

std::string Error::to_string() const {
  std::string out = code_name();
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

} // namespace gw
