// router::RouteTable: the immutable matcher built from a model::Config. Lookup walks a segment
// trie per host group, so its cost grows with the path's length, not with the number of routes;
// regular expressions run only for routes that ask for them, and only when nothing more specific
// matched. Immutable after build(); any thread. Read next: explain.hpp, analysis.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gw/core/error.hpp"
#include "gw/model/config.hpp"
#include "gw/model/path_template.hpp"

namespace gw::router {

/// Header access for header matchers, implemented over whatever holds the request's fields.
class HeaderLookup {
public:
  virtual ~HeaderLookup() = default;
  /// The first value of header `lower_name` (lowercase), if present.
  virtual bool find(std::string_view lower_name, std::string_view& value) const = 0;
};

/// Headers held as (lowercase name, value) pairs: for tools and tests, not the data path.
class ListHeaders final : public HeaderLookup {
public:
  std::vector<std::pair<std::string, std::string>> values;
  ListHeaders() = default;
  ListHeaders(std::initializer_list<std::pair<std::string, std::string>> v) : values(v) {}
  bool find(std::string_view lower_name, std::string_view& value) const override {
    for (const auto& [k, v] : values)
      if (k == lower_name) {
        value = v;
        return true;
      }
    return false;
  }
};

/// What the router needs of a request. Every member views memory owned by the caller.
struct Request {
  std::string_view host; // Host header or :authority as received (case and port are handled)
  model::Method method = model::Method::GET;
  std::string_view path;  // canonical, from uri::parse_target()
  std::string_view query; // raw, without "?"
  const HeaderLookup* headers = nullptr;
};

struct Param {
  std::string_view name;
  std::string_view value;
};

enum class MatchStatus : std::uint8_t { matched, not_found, method_not_allowed };

class ParamList;

/// The decision. Parameter values view the request path, names view the table; nothing is
/// allocated and the value slots beyond `param_count` are left uninitialised (lookups are hot).
struct Match {
  struct Value {
    const char* data;
    std::uint32_t size;
  };

  MatchStatus status = MatchStatus::not_found;
  std::uint8_t param_count = 0;
  std::uint32_t route = 0; // index into Config::routes when matched
  model::MethodSet allow;  // methods that would match, for 405 `Allow`
  const std::string* param_names = nullptr;
  std::array<Value, model::kMaxTemplateParams> values;

  bool matched() const noexcept { return status == MatchStatus::matched; }
  Param param(std::size_t i) const noexcept {
    return {param_names[i], {values[i].data, values[i].size}};
  }
  ParamList params() const noexcept;
};

/// The captured parameters of a Match, iterable as Param values.
class ParamList {
public:
  explicit ParamList(const Match& m) noexcept : m_(&m) {}
  std::size_t size() const noexcept { return m_->param_count; }
  bool empty() const noexcept { return size() == 0; }
  Param operator[](std::size_t i) const noexcept { return m_->param(i); }
  /// The value of parameter `name`, if captured.
  std::optional<std::string_view> find(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < size(); ++i)
      if (m_->param_names[i] == name) return (*this)[i].value;
    return std::nullopt;
  }

  class iterator {
  public:
    using value_type = Param;
    using difference_type = std::ptrdiff_t;
    iterator(const Match* m, std::size_t i) : m_(m), i_(i) {}
    Param operator*() const noexcept { return m_->param(i_); }
    iterator& operator++() noexcept {
      ++i_;
      return *this;
    }
    bool operator==(const iterator& o) const noexcept { return i_ == o.i_; }

  private:
    const Match* m_;
    std::size_t i_;
  };
  iterator begin() const noexcept { return {m_, 0}; }
  iterator end() const noexcept { return {m_, size()}; }

private:
  const Match* m_;
};

inline ParamList Match::params() const noexcept {
  return ParamList(*this);
}

/// Host as matched: lowercase, port and trailing dot removed. Writes into `buf` (>= 256 bytes);
/// returns an empty view for hosts longer than that.
std::string_view normalize_host(std::string_view host, std::span<char> buf) noexcept;

class RouteTable {
public:
  /// Compiles the matcher. Fails only on input a validated Config cannot contain (a template or
  /// regex that does not compile), which a hostile table could.
  static Result<RouteTable> build(std::shared_ptr<const model::Config> config);

  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;
  ~RouteTable();

  Match match(const Request& req) const noexcept;

  const model::Config& config() const noexcept;
  const std::shared_ptr<const model::Config>& config_ptr() const noexcept;

  struct Impl;
  const Impl& impl() const noexcept { return *impl_; }

private:
  explicit RouteTable(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace gw::router

namespace gw::router {

/// The path to forward for a matched route: rewrite.path filled from captured parameters, or
/// the matched prefix replaced by rewrite.prefix, or `path` unchanged. The result stays
/// canonical (parameters were captured from a canonical path).
std::string rewritten_path(const model::Route& route, const ParamList& params,
                           std::string_view path);
/// The same, appended to `out` (no allocation on the request path).
void append_rewritten_path(std::string& out, const model::Route& route, const ParamList& params,
                           std::string_view path);

} // namespace gw::router
