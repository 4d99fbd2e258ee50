// The filter API's small shared pieces: header operations, the request edits, scopes.
#include "gw/policy/filter.hpp"

#include <algorithm>

#include "gw/core/text.hpp"

namespace gw::policy {

bool replaces(const HeaderOps& ops, std::string_view name) noexcept {
  return std::any_of(ops.remove.begin(), ops.remove.end(),
                     [&](const std::string& n) { return text::iequals(n, name); }) ||
         std::any_of(ops.set.begin(), ops.set.end(),
                     [&](const auto& kv) { return text::iequals(kv.first, name); });
}

const std::string* renamed(const HeaderOps& ops, std::string_view name) noexcept {
  for (const auto& [from, to] : ops.rename)
    if (text::iequals(from, name)) return &to;
  return nullptr;
}

void Edits::clear() {
  drop.clear();
  set.clear();
  drop_query.clear();
  drop_cookies.clear();
  protect = nullptr;
  transform = nullptr;
  path.reset();
  response_add.clear();
  response_set.clear();
  response_remove.clear();
}

bool Edits::drops(std::string_view name) const noexcept {
  const auto named = [&](const std::string& n) { return text::iequals(n, name); };
  return std::any_of(drop.begin(), drop.end(), named) ||
         std::any_of(set.begin(), set.end(), [&](const auto& kv) { return named(kv.first); }) ||
         (protect && std::any_of(protect->begin(), protect->end(), named)) ||
         (transform && replaces(transform->request, name));
}

bool Edits::drops_param(std::string_view name) const noexcept {
  if (std::find(drop_query.begin(), drop_query.end(), name) != drop_query.end()) return true;
  if (!transform) return false;
  const auto& t = *transform;
  return std::find(t.query.remove.begin(), t.query.remove.end(), name) != t.query.remove.end() ||
         std::any_of(t.query.set.begin(), t.query.set.end(),
                     [&](const auto& kv) { return kv.first == name; });
}

void Edits::set_once(const std::string& name, std::string value) {
  if (std::none_of(set.begin(), set.end(), [&](const auto& kv) { return kv.first == name; }))
    set.emplace_back(name, std::move(value));
}

void Edits::set_header(std::string name, std::string value) {
  for (auto& kv : set)
    if (kv.first == name) {
      kv.second = std::move(value);
      return;
    }
  set.emplace_back(std::move(name), std::move(value));
}

std::vector<std::string> scopes_of(const nlohmann::json& claims) {
  std::vector<std::string> out;
  if (!claims.is_object()) return out;
  auto split = [&](const std::string& s) {
    std::size_t pos = 0;
    while (pos < s.size()) {
      const auto sp = s.find(' ', pos);
      if (sp != pos)
        out.push_back(s.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos));
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
  };
  for (const char* key : {"scope", "scp"}) {
    auto it = claims.find(key);
    if (it == claims.end()) continue;
    if (it->is_string())
      split(it->get<std::string>());
    else if (it->is_array())
      for (const auto& s : *it)
        if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

} // namespace gw::policy
