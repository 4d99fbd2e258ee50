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
  return source_file(src.file) + ":" + std::to_string(src.line);
}

const std::string& Config::source_file(std::uint32_t file) const {
  const Source& s = sources[file];
  return s.path.empty() ? s.name : s.path;
}

namespace {

/// The last `n` components of absolute `path` ("b/c" for "/a/b/c" and n = 2), or "" when it
/// has fewer.
std::string_view last_components(std::string_view path, std::size_t n) {
  std::size_t start = path.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t slash = start == 0 ? std::string_view::npos : path.rfind('/', start - 1);
    if (slash == std::string_view::npos) return {};
    start = slash;
  }
  return path.substr(start + 1);
}

} // namespace

std::vector<std::string> portable_source_names(const std::vector<std::string>& paths) {
  std::vector<std::string> names;
  names.reserve(paths.size());
  for (const auto& p : paths) {
    std::string name = p; // no trailing run is unique: only the whole path tells it apart
    for (std::size_t n = 1;; ++n) {
      const std::string_view tail = last_components(p, n);
      if (tail.empty()) break;
      const bool shared = std::any_of(paths.begin(), paths.end(), [&](const std::string& o) {
        return o != p && last_components(o, n) == tail;
      });
      if (!shared) {
        name = std::string(tail);
        break;
      }
    }
    names.push_back(std::move(name));
  }
  return names;
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
