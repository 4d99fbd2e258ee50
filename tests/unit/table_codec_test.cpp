#include <catch2/catch.hpp>

#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "gw/table/codec.hpp"
#include "support/spec_builder.hpp"

using namespace gw;
using Bytes = std::vector<unsigned char>;

namespace {

const char* kSpec = R"(version = 1
[upstreams.pets]
endpoints = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 }]
balance = "hash"
hash_on = "header:x-user"
[policies.rl]
kind = "rate_limit"
rate = "10/s"
[[routes]]
name = "get-pet"
methods = ["GET", "HEAD"]
hosts = ["api.example.com", "*.example.com"]
template = "/pets/{id}"
upstream = "pets"
timeout = "5s"
policies = ["rl"]
headers = [{ name = "x-v", exact = "2" }]
query = [{ name = "q", present = true, invert = true }]
rewrite = { path = "/v2/pets/{id}", host = "pets.internal" }
[[routes]]
name = "api"
prefix = "/api"
upstream = "pets"
rewrite = { prefix = "/" }
)";

model::Config config() {
  auto b = gwtest::build_spec(kSpec);
  INFO(b.dump());
  REQUIRE(b.config);
  return *b.config;
}

table::errc decode_error(const Bytes& bytes) {
  auto d = table::decode(bytes);
  REQUIRE_FALSE(d);
  REQUIRE(d.error().code.category() == table::table_category());
  return static_cast<table::errc>(d.error().code.value());
}

std::uint32_t get_u32(const Bytes& b, std::size_t at) {
  return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24;
}
void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(Bytes& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}

/// Offset of the directory entry for section `tag`.
std::size_t dir_entry(const Bytes& b, std::uint32_t tag) {
  const std::uint32_t n = get_u32(b, 24);
  for (std::uint32_t i = 0; i < n; ++i)
    if (get_u32(b, 64 + 24 * i) == tag) return 64 + 24 * i;
  FAIL("no such section");
  return 0;
}
std::size_t section_offset(const Bytes& b, std::uint32_t tag) {
  return get_u32(b, dir_entry(b, tag) + 8);
}

} // namespace

TEST_CASE("a table round-trips to an equal config", "[table]") {
  const auto cfg = config();
  const Bytes bytes = table::encode(cfg, {.label = "v1", .timestamp = 42});
  auto d = table::decode(bytes);
  REQUIRE(d);
  CHECK(d->config == cfg);
  CHECK(d->info.label == "v1");
  CHECK(d->info.timestamp == 42);
  CHECK(d->info.sections.size() == 5);
  CHECK(d->info.file_size == bytes.size());
}

TEST_CASE("compiling the same input twice gives identical bytes", "[table]") {
  const Bytes a = table::encode(config());
  const Bytes b = table::encode(config());
  CHECK(a == b);
  CHECK(table::encode(config(), {.label = "x"}) != a);
}

TEST_CASE("the header starts with the magic, the version and the digest", "[table]") {
  const Bytes b = table::encode(config());
  CHECK(std::memcmp(b.data(), "GWRT\r\n\x1a\n", 8) == 0);
  CHECK(b[8] == table::kFormatMajor);
  Bytes copy = b;
  table::seal(copy);
  CHECK(copy == b); // the stored digest is the digest of the content
}

TEST_CASE("each way a table can be damaged is a named error", "[table]") {
  const Bytes good = table::encode(config());

  SECTION("empty") {
    CHECK(decode_error({}) == table::errc::empty);
  }
  SECTION("bad magic") {
    CHECK(decode_error(Bytes{'v', 'e', 'r', 's', 'i', 'o', 'n', ' ', '=', ' ', '1'}) ==
          table::errc::bad_magic);
  }
  SECTION("truncated inside the magic or header") {
    CHECK(decode_error(Bytes(good.begin(), good.begin() + 5)) == table::errc::truncated);
    CHECK(decode_error(Bytes(good.begin(), good.begin() + 40)) == table::errc::truncated);
  }
  SECTION("truncated content") {
    CHECK(decode_error(Bytes(good.begin(), good.end() - 1)) == table::errc::truncated);
  }
  SECTION("bytes appended") {
    Bytes b = good;
    b.push_back(0);
    CHECK(decode_error(b) == table::errc::size_mismatch);
  }
  SECTION("unsupported version") {
    Bytes b = good;
    b[8] = 2;
    CHECK(decode_error(b) == table::errc::unsupported_version);
    b = good;
    b[10] = 9; // a newer minor
    CHECK(decode_error(b) == table::errc::unsupported_version);
  }
  SECTION("bad header") {
    Bytes b = good;
    put_u32(b, 12, 10);
    CHECK(decode_error(b) == table::errc::bad_header);
    b = good;
    put_u32(b, 24, 100000);
    CHECK(decode_error(b) == table::errc::bad_header);
  }
  SECTION("checksum mismatch when one bit flips") {
    Bytes b = good;
    b[b.size() - 3] ^= 0x10;
    CHECK(decode_error(b) == table::errc::checksum_mismatch);
  }
  SECTION("section outside the file") {
    Bytes b = good;
    put_u64(b, dir_entry(b, table::kRoutes) + 8, b.size() + 10);
    table::seal(b);
    CHECK(decode_error(b) == table::errc::section_out_of_range);
  }
  SECTION("overlapping sections") {
    Bytes b = good;
    put_u64(b, dir_entry(b, table::kRoutes) + 8, section_offset(b, table::kPolicies));
    table::seal(b);
    CHECK(decode_error(b) == table::errc::section_out_of_range);
  }
  SECTION("duplicate section") {
    Bytes b = good;
    put_u32(b, dir_entry(b, table::kPolicies), table::kMeta);
    table::seal(b);
    CHECK(decode_error(b) == table::errc::duplicate_section);
  }
  SECTION("unknown required section") {
    Bytes b = good;
    put_u32(b, dir_entry(b, table::kPolicies), table::tag("XTRA"));
    table::seal(b);
    CHECK(decode_error(b) == table::errc::unknown_section);
  }
  SECTION("missing section (an unknown optional one is skipped)") {
    Bytes b = good;
    const auto e = dir_entry(b, table::kPolicies);
    put_u32(b, e, table::tag("XTRA"));
    put_u32(b, e + 4, table::kSectionOptional);
    table::seal(b);
    CHECK(decode_error(b) == table::errc::missing_section);
  }
  SECTION("a record runs past its section") {
    Bytes b = good;
    const auto e = dir_entry(b, table::kStrings); // the last string's bytes now run past the end
    put_u64(b, e + 16, get_u32(b, e + 16) - 1);
    table::seal(b);
    CHECK(decode_error(b) == table::errc::section_overrun);
  }
  SECTION("bytes after the last record") {
    Bytes b = good;
    const auto at = section_offset(b, table::kRoutes);
    put_u32(b, at, get_u32(b, at) - 1); // one route fewer than the section holds
    table::seal(b);
    CHECK(decode_error(b) == table::errc::trailing_bytes);
  }
  SECTION("string index out of range") {
    Bytes b = good;
    put_u32(b, section_offset(b, table::kRoutes) + 4, 0xfffffff0); // first route's name
    table::seal(b);
    CHECK(decode_error(b) == table::errc::bad_string);
  }
  SECTION("upstream index out of range") {
    Bytes b = good;
    // First route: count, name, host count, hosts, methods, kind, pattern, priority, upstream.
    const auto start = section_offset(b, table::kRoutes);
    const auto hosts = get_u32(b, start + 8);
    const auto at = start + 4 + 4 + 4 + 4 * hosts + 2 + 1 + 4 + 4;
    REQUIRE(get_u32(b, at) == 0);
    put_u32(b, at, 7);
    table::seal(b);
    CHECK(decode_error(b) == table::errc::index_out_of_range);
  }
  SECTION("enum value out of range") {
    Bytes b = good;
    b[section_offset(b, table::kUpstreams) + 4 + 4] = 9; // balance
    table::seal(b);
    CHECK(decode_error(b) == table::errc::bad_value);
  }
  SECTION("a huge count cannot force a huge allocation") {
    Bytes b = good;
    put_u32(b, section_offset(b, table::kRoutes), 0x7fffffff);
    table::seal(b);
    CHECK(decode_error(b) == table::errc::bad_value);
  }
}

TEST_CASE("reading a table file: too large, unreadable", "[table]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("gw-table-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto big = (dir / "big.gwrt").string();
  {
    const int fd = ::open(big.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, static_cast<off_t>(table::kMaxTableBytes + 1)) == 0); // sparse
    ::close(fd);
  }
  auto r = table::read_file(big);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == table::errc::too_large);
  auto d = table::read_file(dir.string());
  REQUIRE_FALSE(d);
  CHECK(d.error().code == table::errc::io_error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("writes are atomic and leave no temporary file", "[table]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("gw-write-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "routes.gwrt").string();
  const Bytes bytes = table::encode(config());
  REQUIRE(table::write_file(path, bytes));
  auto back = table::read_file(path);
  REQUIRE(back);
  CHECK(back->config == config());
  CHECK(std::distance(std::filesystem::directory_iterator(dir),
                      std::filesystem::directory_iterator()) == 1);
  CHECK_FALSE(table::write_file((dir / "missing" / "x.gwrt").string(), bytes));
  std::filesystem::remove_all(dir);
}

TEST_CASE("no single-byte corruption crashes the decoder", "[table]") {
  // Each byte replaced by three values, re-sealed so the structural checks (not the checksum) face
  // it.
  const Bytes good = table::encode(config());
  std::size_t rejected = 0, accepted = 0;
  for (std::size_t i = 64; i < good.size(); ++i) {
    for (unsigned char v : {static_cast<unsigned char>(good[i] ^ 0xff),
                            static_cast<unsigned char>(0), static_cast<unsigned char>(0x7f)}) {
      if (v == good[i]) continue;
      Bytes b = good;
      b[i] = v;
      table::seal(b);
      auto d = table::decode(b);
      if (d)
        ++accepted;
      else
        ++rejected;
    }
  }
  CHECK(rejected > 0);
  CHECK(accepted > 0); // e.g. timeout values: any number is structurally fine
}
