#include "gw/model/config.hpp"

#include <algorithm>

namespace gw::model {

std::string Endpoint::address() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

const Upstream* Config::find_upstream(std::string_view name) const {
  auto it = std::find_if(upstreams.begin(), upstreams.end(),
                         [&](const Upstream& u) { return u.name == name; });
  return it == upstreams.end() ? nullptr : &*it;
}

const Route* Config::find_route(std::string_view name) const {
  auto it =
      std::find_if(routes.begin(), routes.end(), [&](const Route& r) { return r.name == name; });
  return it == routes.end() ? nullptr : &*it;
}

std::string Config::where(const SourceRef& src) const {
  if (src.file >= sources.size()) return "";
  return sources[src.file].name + ":" + std::to_string(src.line);
}

std::string_view to_string(Balance b) noexcept {
  switch (b) {
  case Balance::round_robin:
    return "round_robin";
  case Balance::least_request:
    return "least_request";
  case Balance::hash:
    return "hash";
  case Balance::random:
    return "random";
  }
  return "?";
}

std::string_view to_string(HashOn h) noexcept {
  switch (h) {
  case HashOn::none:
    return "none";
  case HashOn::header:
    return "header";
  case HashOn::cookie:
    return "cookie";
  case HashOn::client_ip:
    return "client_ip";
  }
  return "?";
}

std::string_view to_string(MatchKind k) noexcept {
  switch (k) {
  case MatchKind::exact:
    return "path";
  case MatchKind::template_:
    return "template";
  case MatchKind::prefix:
    return "prefix";
  case MatchKind::regex:
    return "regex";
  }
  return "?";
}

std::string_view to_string(MatchOp op) noexcept {
  switch (op) {
  case MatchOp::exact:
    return "exact";
  case MatchOp::prefix:
    return "prefix";
  case MatchOp::suffix:
    return "suffix";
  case MatchOp::contains:
    return "contains";
  case MatchOp::regex:
    return "regex";
  case MatchOp::present:
    return "present";
  }
  return "?";
}

} // namespace gw::model
