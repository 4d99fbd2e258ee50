#include <algorithm>
#include <cstring>
#include <set>

#include "bytes.hpp"
#include "gw/core/file.hpp"
#include "gw/table/codec.hpp"

namespace gw::table {
namespace {

using detail::Reader;

std::string hex32(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

/// Decodes sections of a table whose header and directory have been checked. The first error
/// wins; later reads return harmless defaults until the caller checks `error`.
class Decoder {
public:
  std::optional<Error> error;
  std::vector<std::string_view> strings;
  model::Config cfg;
  TableInfo* info = nullptr;

  void set_error(errc e, std::string msg) {
    if (!error) error = Error(e, std::move(msg));
  }

  std::string str(std::uint32_t idx, const char* what) {
    if (idx >= strings.size()) {
      set_error(errc::bad_string, std::string(what) + ": string index " + std::to_string(idx) +
                                      " out of range (" + std::to_string(strings.size()) +
                                      " strings)");
      return {};
    }
    return std::string(strings[idx]);
  }

  /// A count that must fit the bytes left, given each element needs at least `min_size` bytes.
  std::uint32_t count(Reader& r, std::size_t min_size, const char* what) {
    const std::uint32_t n = r.u32();
    if (!r.failed() && static_cast<std::uint64_t>(n) * min_size > r.remaining()) {
      set_error(errc::bad_value, std::string(what) + " count " + std::to_string(n) +
                                     " exceeds the bytes left in its section");
      return 0;
    }
    return n;
  }

  void finish(Reader& r, std::uint32_t t) {
    if (error) return;
    if (r.failed())
      set_error(errc::section_overrun,
                "section " + section_name(t) + ": a record runs past its end");
    else if (r.remaining() != 0)
      set_error(errc::trailing_bytes, "section " + section_name(t) + ": " +
                                          std::to_string(r.remaining()) +
                                          " bytes after the last record");
  }

  model::SourceRef src(Reader& r, const char* what) {
    model::SourceRef s;
    s.file = r.u32();
    s.line = r.u32();
    s.col = r.u32();
    if (!r.failed() && s.file != model::kNoFile && s.file >= cfg.sources.size())
      set_error(errc::index_out_of_range,
                std::string(what) + ": source index " + std::to_string(s.file) + " out of range");
    return s;
  }

  void strings_section(std::span<const unsigned char> data) {
    Reader r(data);
    const std::uint32_t n = count(r, 4, "string");
    strings.reserve(n);
    for (std::uint32_t i = 0; i < n && !error && !r.failed(); ++i) {
      const std::uint32_t len = r.u32();
      auto b = r.bytes(len);
      strings.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
    }
    finish(r, kStrings);
  }

  void meta_section(std::span<const unsigned char> data) {
    Reader r(data);
    info->compiler = str(r.u32(), "META compiler");
    info->label = str(r.u32(), "META label");
    info->timestamp = r.u64();
    const std::uint32_t n = count(r, 36, "source");
    for (std::uint32_t i = 0; i < n && !error && !r.failed(); ++i) {
      model::Source s;
      s.name = str(r.u32(), "META source");
      auto d = r.bytes(32);
      if (d.size() == 32) std::memcpy(s.digest.data(), d.data(), 32);
      cfg.sources.push_back(std::move(s));
    }
    finish(r, kMeta);
  }

  void upstreams_section(std::span<const unsigned char> data) {
    Reader r(data);
    const std::uint32_t n = count(r, 30, "upstream");
    std::set<std::string> names;
    for (std::uint32_t i = 0; i < n && !error && !r.failed(); ++i) {
      model::Upstream u;
      u.name = str(r.u32(), "upstream name");
      const auto bal = r.u8(), hash = r.u8();
      if (bal > static_cast<std::uint8_t>(model::Balance::random))
        set_error(errc::bad_value,
                  "upstream " + std::to_string(i) + ": balance " + std::to_string(bal));
      if (hash > static_cast<std::uint8_t>(model::HashOn::client_ip))
        set_error(errc::bad_value,
                  "upstream " + std::to_string(i) + ": hash_on " + std::to_string(hash));
      u.balance = static_cast<model::Balance>(bal);
      u.hash_on = static_cast<model::HashOn>(hash);
      u.hash_key = str(r.u32(), "upstream hash key");
      u.connect_timeout_ms = r.u32();
      u.src = src(r, "upstream");
      const std::uint32_t ne = count(r, 10, "endpoint");
      if (ne == 0 && !r.failed())
        set_error(errc::bad_value, "upstream " + std::to_string(i) + " has no endpoints");
      for (std::uint32_t j = 0; j < ne && !error && !r.failed(); ++j) {
        model::Endpoint e;
        e.host = str(r.u32(), "endpoint host");
        e.port = r.u16();
        e.weight = r.u32();
        if (!r.failed() && (e.port == 0 || e.weight == 0 || e.host.empty()))
          set_error(errc::bad_value, "upstream " + std::to_string(i) + ": endpoint " +
                                         std::to_string(j) + " has an empty host, port or weight");
        u.endpoints.push_back(std::move(e));
      }
      if (!error && !r.failed() && !names.insert(u.name).second)
        set_error(errc::bad_value, "duplicate upstream name \"" + u.name + "\"");
      cfg.upstreams.push_back(std::move(u));
    }
    finish(r, kUpstreams);
  }

  void policies_section(std::span<const unsigned char> data) {
    Reader r(data);
    const std::uint32_t n = count(r, 24, "policy");
    for (std::uint32_t i = 0; i < n && !error && !r.failed(); ++i) {
      model::Policy p;
      p.name = str(r.u32(), "policy name");
      p.kind = str(r.u32(), "policy kind");
      p.config = str(r.u32(), "policy config");
      p.src = src(r, "policy");
      cfg.policies.push_back(std::move(p));
    }
    finish(r, kPolicies);
  }

  void matchers(Reader& r, std::vector<model::Matcher>& out, const std::string& where) {
    const std::uint32_t n = count(r, 10, "matcher");
    for (std::uint32_t i = 0; i < n && !error && !r.failed(); ++i) {
      model::Matcher m;
      m.name = str(r.u32(), "matcher name");
      const auto op = r.u8();
      if (op > static_cast<std::uint8_t>(model::MatchOp::present))
        set_error(errc::bad_value, where + ": matcher operator " + std::to_string(op));
      m.op = static_cast<model::MatchOp>(op);
      m.value = str(r.u32(), "matcher value");
      const auto inv = r.u8();
      if (inv > 1)
        set_error(errc::bad_value, where + ": matcher invert flag " + std::to_string(inv));
      m.invert = inv == 1;
      out.push_back(std::move(m));
    }
  }

  void routes_section(std::span<const unsigned char> data) {
    Reader r(data);
    const std::uint32_t n = count(r, 60, "route");
    std::set<std::string> names;
    for (std::uint32_t i = 0; i < n && !error && !r.failed(); ++i) {
      const std::string where = "route " + std::to_string(i);
      model::Route rt;
      rt.name = str(r.u32(), "route name");
      const std::uint32_t nh = count(r, 4, "host");
      for (std::uint32_t j = 0; j < nh && !error && !r.failed(); ++j)
        rt.hosts.push_back(str(r.u32(), "host"));
      const std::uint16_t bits = r.u16();
      if (bits == 0 || model::MethodSet::from_bits(bits).bits() != bits)
        set_error(errc::bad_value, where + ": method set " + hex32(bits));
      rt.methods = model::MethodSet::from_bits(bits);
      const auto kind = r.u8();
      if (kind > static_cast<std::uint8_t>(model::MatchKind::regex))
        set_error(errc::bad_value, where + ": match kind " + std::to_string(kind));
      rt.kind = static_cast<model::MatchKind>(kind);
      rt.pattern = str(r.u32(), "route pattern");
      rt.priority = r.i32();
      rt.upstream = r.u32();
      if (!r.failed() && rt.upstream >= cfg.upstreams.size())
        set_error(errc::index_out_of_range,
                  where + ": upstream index " + std::to_string(rt.upstream) + " out of range (" +
                      std::to_string(cfg.upstreams.size()) + " upstreams)");
      rt.timeout_ms = r.u32();
      rt.per_try_timeout_ms = r.u32();
      rt.retries = r.u32();
      if (!r.failed() && rt.retries > model::kMaxRetries)
        set_error(errc::bad_value, where + ": retries " + std::to_string(rt.retries));
      rt.max_body = r.u64();
      const std::uint32_t np = count(r, 4, "policy reference");
      for (std::uint32_t j = 0; j < np && !error && !r.failed(); ++j) {
        const std::uint32_t p = r.u32();
        if (!r.failed() && p >= cfg.policies.size())
          set_error(errc::index_out_of_range,
                    where + ": policy index " + std::to_string(p) + " out of range (" +
                        std::to_string(cfg.policies.size()) + " policies)");
        rt.policies.push_back(p);
      }
      matchers(r, rt.headers, where);
      matchers(r, rt.query, where);
      const auto rw = r.u8();
      if (rw > 7) set_error(errc::bad_value, where + ": rewrite flags " + std::to_string(rw));
      if (rw & 1) rt.rewrite.path = str(r.u32(), "rewrite path");
      if (rw & 2) rt.rewrite.prefix = str(r.u32(), "rewrite prefix");
      if (rw & 4) rt.rewrite.host = str(r.u32(), "rewrite host");
      rt.decl = r.u32();
      rt.src = src(r, "route");
      if (!error && !r.failed() && !names.insert(rt.name).second)
        set_error(errc::bad_value, "duplicate route name \"" + rt.name + "\"");
      cfg.routes.push_back(std::move(rt));
    }
    finish(r, kRoutes);
  }
};

} // namespace

Result<Decoded> decode(std::span<const unsigned char> bytes) {
  const std::size_t size = bytes.size();
  if (size == 0) return fail(errc::empty, "the table is empty (0 bytes)");
  if (size > kMaxTableBytes) return fail(errc::too_large, "the table is larger than 512 MiB");
  if (size < sizeof kMagic) {
    if (std::memcmp(bytes.data(), kMagic, size) == 0)
      return fail(errc::truncated,
                  "only " + std::to_string(size) + " bytes: cut off inside the header");
    return fail(errc::bad_magic, "not a gw route table (no GWRT magic)");
  }
  if (!has_magic(bytes)) return fail(errc::bad_magic, "not a gw route table (no GWRT magic)");
  if (size < kHeaderSize)
    return fail(errc::truncated,
                "only " + std::to_string(size) + " bytes: cut off inside the 64-byte header");

  Reader h(bytes.subspan(8, kHeaderSize - 8));
  const std::uint16_t major = h.u16(), minor = h.u16();
  const std::uint32_t header_size = h.u32();
  const std::uint64_t file_size = h.u64();
  const std::uint32_t section_count = h.u32();
  h.u32(); // flags: none defined in 1.0
  if (major != kFormatMajor || minor > kFormatMinor)
    return fail(
        errc::unsupported_version,
        "format " + std::to_string(major) + "." + std::to_string(minor) + "; this build reads " +
            std::to_string(kFormatMajor) + "." + std::to_string(kFormatMinor) +
            (major > kFormatMajor || minor > kFormatMinor ? " (compiled by a newer gwctl?)" : ""));
  if (file_size > size)
    return fail(errc::truncated, "the header says " + std::to_string(file_size) +
                                     " bytes, the file has " + std::to_string(size));
  if (file_size < size)
    return fail(errc::size_mismatch, "the header says " + std::to_string(file_size) +
                                         " bytes, the file has " + std::to_string(size));
  if (header_size < kHeaderSize || header_size > size)
    return fail(errc::bad_header, "header size " + std::to_string(header_size) + " out of range");
  if (section_count > kMaxSections)
    return fail(errc::bad_header, std::to_string(section_count) + " sections (at most " +
                                      std::to_string(kMaxSections) + ")");
  const std::uint64_t dir_end = header_size + std::uint64_t{kDirEntrySize} * section_count;
  if (dir_end > size)
    return fail(errc::bad_header, "the section directory runs past the end of the file");

  // Verify the digest before interpreting any content.
  {
    static constexpr unsigned char kZeros[32] = {};
    Sha256Hasher hasher;
    hasher.update(bytes.subspan(0, 32));
    hasher.update(kZeros);
    hasher.update(bytes.subspan(64));
    const Sha256 actual = hasher.finish();
    Sha256 recorded;
    std::memcpy(recorded.data(), bytes.data() + 32, 32);
    if (actual != recorded)
      return fail(errc::checksum_mismatch,
                  "content does not match its SHA-256 (recorded " + to_hex(recorded).substr(0, 16) +
                      "..., actual " + to_hex(actual).substr(0, 16) + "...): the file is damaged");
  }

  Decoded out;
  out.info.major = major;
  out.info.minor = minor;
  out.info.file_size = file_size;
  std::memcpy(out.info.digest.data(), bytes.data() + 32, 32);

  Reader dir(bytes.subspan(header_size, dir_end - header_size));
  std::vector<SectionInfo> secs;
  for (std::uint32_t i = 0; i < section_count; ++i) {
    SectionInfo s;
    s.tag = dir.u32();
    s.flags = dir.u32();
    s.offset = dir.u64();
    s.size = dir.u64();
    if (s.offset < dir_end || s.offset > size || s.size > size - s.offset)
      return fail(errc::section_out_of_range,
                  "section " + section_name(s.tag) + " at offset " + hex32(s.offset) + " size " +
                      std::to_string(s.size) + " lies outside the file");
    for (const auto& o : secs)
      if (o.tag == s.tag)
        return fail(errc::duplicate_section, "section " + section_name(s.tag) + " appears twice");
    secs.push_back(s);
  }
  {
    auto sorted = secs;
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
    for (std::size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i - 1].offset + sorted[i - 1].size > sorted[i].offset)
        return fail(errc::section_out_of_range, "sections " + section_name(sorted[i - 1].tag) +
                                                    " and " + section_name(sorted[i].tag) +
                                                    " overlap");
  }
  out.info.sections = secs;

  auto find = [&](std::uint32_t t) -> const SectionInfo* {
    for (const auto& s : secs)
      if (s.tag == t) return &s;
    return nullptr;
  };
  for (const auto& s : secs) {
    const bool known = s.tag == kMeta || s.tag == kStrings || s.tag == kUpstreams ||
                       s.tag == kPolicies || s.tag == kRoutes;
    if (!known && !(s.flags & kSectionOptional))
      return fail(errc::unknown_section,
                  "required section " + section_name(s.tag) + " is not known to this build");
  }
  for (std::uint32_t t : {kMeta, kStrings, kUpstreams, kPolicies, kRoutes})
    if (!find(t)) return fail(errc::missing_section, "section " + section_name(t) + " is missing");

  auto data = [&](std::uint32_t t) {
    const SectionInfo* s = find(t);
    return bytes.subspan(s->offset, s->size);
  };
  Decoder d;
  d.info = &out.info;
  d.strings_section(data(kStrings));
  if (!d.error) d.meta_section(data(kMeta));
  if (!d.error) d.upstreams_section(data(kUpstreams));
  if (!d.error) d.policies_section(data(kPolicies));
  if (!d.error) d.routes_section(data(kRoutes));
  if (d.error) return std::unexpected(*d.error);
  out.config = std::move(d.cfg);
  return out;
}

Result<Decoded> read_file(const std::string& path) {
  auto bytes = file::read_all(path, kMaxTableBytes);
  if (!bytes) {
    if (bytes.error().code == gw::errc::too_large)
      return fail(errc::too_large, path + ": " + bytes.error().message);
    return fail(errc::io_error, path + ": " + bytes.error().message);
  }
  auto d = decode(std::span(reinterpret_cast<const unsigned char*>(bytes->data()), bytes->size()));
  if (!d) return fail(static_cast<errc>(d.error().code.value()), path + ": " + d.error().message);
  return d;
}

} // namespace gw::table
