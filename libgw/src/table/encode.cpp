#include <deque>
#include <unordered_map>

#include "bytes.hpp"
#include "gw/core/file.hpp"
#include "gw/table/codec.hpp"

namespace gw::table {
namespace {

using detail::Writer;

/// Interns strings in first-use order, which is deterministic for a given Config.
/// Keys view the Config's strings (or `owned_`), which outlive the encoder.
class Strings {
public:
  std::uint32_t operator()(std::string_view s) {
    auto [it, fresh] = index_.try_emplace(s, static_cast<std::uint32_t>(list_.size()));
    if (fresh) list_.push_back(s);
    return it->second;
  }
  std::uint32_t own(std::string s) { return (*this)(owned_.emplace_back(std::move(s))); }
  void reserve(std::size_t n) {
    index_.reserve(n);
    list_.reserve(n);
  }
  void write(Writer& w) const {
    w.u32(static_cast<std::uint32_t>(list_.size()));
    for (const std::string_view s : list_) {
      w.u32(static_cast<std::uint32_t>(s.size()));
      w.bytes(s.data(), s.size());
    }
  }

private:
  std::unordered_map<std::string_view, std::uint32_t> index_;
  std::vector<std::string_view> list_;
  std::deque<std::string> owned_; // stable addresses for strings made up here
};

void write_src(Writer& w, const model::SourceRef& s) {
  w.u32(s.file);
  w.u32(s.line);
  w.u32(s.col);
}

void write_matchers(Writer& w, Strings& str, const std::vector<model::Matcher>& ms) {
  w.u32(static_cast<std::uint32_t>(ms.size()));
  for (const auto& m : ms) {
    w.u32(str(m.name));
    w.u8(static_cast<std::uint8_t>(m.op));
    w.u32(str(m.value));
    w.u8(m.invert ? 1 : 0);
  }
}

} // namespace

std::vector<unsigned char> encode(const model::Config& cfg, const EncodeOptions& opts) {
  Strings str;
  str.reserve(cfg.routes.size() * 3 + cfg.upstreams.size() * 4 + 16);
  std::vector<unsigned char> meta, ups, pols, routes, strings;

  {
    Writer w(meta);
    w.u32(str.own(std::string("gwctl ") + GW_VERSION));
    w.u32(str(opts.label));
    w.u64(opts.timestamp);
    w.u32(static_cast<std::uint32_t>(cfg.sources.size()));
    for (const auto& s : cfg.sources) {
      w.u32(str(s.name));
      w.bytes(s.digest.data(), s.digest.size());
    }
  }
  {
    Writer w(ups);
    w.u32(static_cast<std::uint32_t>(cfg.upstreams.size()));
    for (const auto& u : cfg.upstreams) {
      w.u32(str(u.name));
      w.u8(static_cast<std::uint8_t>(u.balance));
      w.u8(static_cast<std::uint8_t>(u.hash_on));
      w.u32(str(u.hash_key));
      w.u32(u.connect_timeout_ms);
      write_src(w, u.src);
      w.u32(static_cast<std::uint32_t>(u.endpoints.size()));
      for (const auto& e : u.endpoints) {
        w.u32(str(e.host));
        w.u16(e.port);
        w.u32(e.weight);
      }
    }
  }
  {
    Writer w(pols);
    w.u32(static_cast<std::uint32_t>(cfg.policies.size()));
    for (const auto& p : cfg.policies) {
      w.u32(str(p.name));
      w.u32(str(p.kind));
      w.u32(str(p.config));
      write_src(w, p.src);
    }
  }
  {
    Writer w(routes);
    w.u32(static_cast<std::uint32_t>(cfg.routes.size()));
    for (const auto& r : cfg.routes) {
      w.u32(str(r.name));
      w.u32(static_cast<std::uint32_t>(r.hosts.size()));
      for (const auto& h : r.hosts)
        w.u32(str(h));
      w.u16(r.methods.bits());
      w.u8(static_cast<std::uint8_t>(r.kind));
      w.u32(str(r.pattern));
      w.i32(r.priority);
      w.u32(r.upstream);
      w.u32(r.timeout_ms);
      w.u32(r.per_try_timeout_ms);
      w.u32(r.retries);
      w.u64(r.max_body);
      w.u32(static_cast<std::uint32_t>(r.policies.size()));
      for (auto p : r.policies)
        w.u32(p);
      write_matchers(w, str, r.headers);
      write_matchers(w, str, r.query);
      const std::uint8_t rw =
          (r.rewrite.path ? 1 : 0) | (r.rewrite.prefix ? 2 : 0) | (r.rewrite.host ? 4 : 0);
      w.u8(rw);
      if (r.rewrite.path) w.u32(str(*r.rewrite.path));
      if (r.rewrite.prefix) w.u32(str(*r.rewrite.prefix));
      if (r.rewrite.host) w.u32(str(*r.rewrite.host));
      w.u32(r.decl);
      write_src(w, r.src);
    }
  }
  {
    Writer w(strings);
    str.write(w);
  }

  const std::vector<std::pair<std::uint32_t, const std::vector<unsigned char>*>> sections = {
      {kMeta, &meta},
      {kStrings, &strings},
      {kUpstreams, &ups},
      {kPolicies, &pols},
      {kRoutes, &routes}};

  std::vector<unsigned char> out;
  Writer w(out);
  w.bytes(kMagic, sizeof kMagic);
  w.u16(kFormatMajor);
  w.u16(kFormatMinor);
  w.u32(kHeaderSize);
  const std::size_t size_at = w.size();
  w.u64(0); // file size, patched below
  w.u32(static_cast<std::uint32_t>(sections.size()));
  w.u32(0);                       // flags
  out.resize(out.size() + 32, 0); // digest, filled by seal()
  std::uint64_t offset = kHeaderSize + kDirEntrySize * sections.size();
  for (const auto& [t, data] : sections) {
    w.u32(t);
    w.u32(0);
    w.u64(offset);
    w.u64(data->size());
    offset += data->size();
  }
  for (const auto& [t, data] : sections)
    w.bytes(data->data(), data->size());
  w.patch_u64(size_at, out.size());
  seal(out);
  return out;
}

Result<void> write_file(const std::string& path, std::span<const unsigned char> bytes) {
  auto r = file::write_atomic(path, bytes);
  if (!r) return fail(errc::io_error, r.error().message);
  return {};
}

} // namespace gw::table
