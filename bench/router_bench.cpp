// Microbenchmarks for the config and request hot paths: route lookup at 10 / 1k / 100k routes,
// compiling a 100k-route spec to .gwrt bytes, loading those bytes back (what the daemon does),
// and request-target normalisation. Route sets are generated as TOML text and go through the real
// pipeline, so the measured tables are the ones gwctl would build.
//
// Goals: lookup at 100k routes within 1.5x of lookup at 10; a 100k-route spec compiles in < 2 s.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gw/model/validate.hpp"
#include "gw/router/analysis.hpp"
#include "gw/router/route_table.hpp"
#include "gw/spec/toml_reader.hpp"
#include "gw/table/codec.hpp"
#include "gw/uri/normalize.hpp"
#include "phases.hpp"

namespace {

using namespace gw;
using bench::Phases;

// Each service owns a block of this many routes under its own first segment.
constexpr std::size_t kRoutesPerService = 10;
// Every kPrefixEvery-th service has a static prefix route instead of its /v2/status route.
constexpr std::size_t kPrefixEvery = 10;
// Rotating request set (a power of two): at 100k routes its lookups touch several MB of table,
// well past L2, as spread-out traffic would; the same size at every table size so only the
// table differs between runs.
constexpr std::size_t kRequests = 4096;

// Service numbers are zero-padded so request paths have the same length at every table size.
std::string svc(std::size_t s, bool slash = false) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "/svc%05zu", s);
  return buf + (slash ? 0 : 1);
}

struct RouteShape {
  const char* suffix;  // name suffix
  const char* methods; // TOML array body
  const char* kind;    // "path" | "template" | "prefix"
  const char* pattern; // after "/svcNNNNN"
};

// One service's block. Index 9 is a prefix only for every kPrefixEvery-th service.
constexpr RouteShape kShapes[kRoutesPerService] = {
    {"health", R"("GET", "HEAD")", "path", "/v1/health"},
    {"list-items", R"("GET", "HEAD")", "path", "/v1/items"},
    {"create-item", R"("POST")", "path", "/v1/items"},
    {"get-item", R"("GET", "HEAD")", "template", "/v1/items/{id}"},
    {"update-item", R"("PUT", "PATCH", "DELETE")", "template", "/v1/items/{id}"},
    {"get-user", R"("GET")", "template", "/v1/users/{user}"},
    {"get-order", R"("GET")", "template", "/v1/users/{user}/orders/{order}"},
    {"get-line", R"("GET")", "template", "/v1/users/{user}/orders/{order}/lines/{line}"},
    {"get-file", R"("GET")", "template", "/v1/files/{name}.{ext}"},
    {"status", R"("GET")", "path", "/v2/status"},
};
constexpr RouteShape kPrefixShape = {"static", R"("GET", "HEAD")", "prefix", "/static/"};

std::size_t services_for(std::size_t routes) {
  return (routes + kRoutesPerService - 1) / kRoutesPerService;
}

/// A spec with exactly `routes` routes, all on one upstream.
std::string make_spec(std::size_t routes) {
  std::string t;
  t.reserve(routes * 140 + 512);
  t += "version = 1\n\n[defaults]\ntimeout = \"10s\"\n\n";
  t += "[upstreams.backend]\nendpoints = [\"127.0.0.1:9000\", \"127.0.0.1:9001\"]\n";
  for (std::size_t i = 0; i < routes; ++i) {
    const std::size_t s = i / kRoutesPerService, k = i % kRoutesPerService;
    const RouteShape& sh = (k == 9 && s % kPrefixEvery == 0) ? kPrefixShape : kShapes[k];
    const std::string base = svc(s);
    t += "\n[[routes]]\nname = \"";
    t += base + "-" + sh.suffix + "\"\nmethods = [" + sh.methods + "]\n";
    t += std::string(sh.kind) + " = \"/" + base + sh.pattern + "\"\nupstream = \"backend\"\n";
  }
  return t;
}

struct Probe {
  std::string path; // canonical, as parse_target leaves it
  model::Method method;
  std::string expect; // route name, or "" for a 404
};

/// `kRequests` request paths spread over every service of a `routes`-route table; about 10% miss.
/// The mix of shapes (and so path lengths) does not depend on the table size.
std::vector<Probe> make_probes(std::size_t routes) {
  const std::size_t services = services_for(routes);
  const std::size_t prefix_services = (services + kPrefixEvery - 1) / kPrefixEvery;
  std::mt19937_64 rng(42); // fixed: the same sequence every run
  std::vector<Probe> out;
  out.reserve(kRequests);
  char id[8];
  auto num = [&] {
    std::snprintf(id, sizeof id, "%04u", static_cast<unsigned>(rng() % 10000));
    return std::string(id);
  };
  while (out.size() < kRequests) {
    const std::size_t s = rng() % services;
    const std::string base = svc(s, true);
    const unsigned u = rng() % 100;
    Probe p{"", model::Method::GET, ""};
    if (u < 5) { // unknown first segment: the root lookup misses
      p.path = "/svx" + base.substr(4) + "/v1/items/" + num();
    } else if (u < 10) { // known service, unknown resource: misses a few levels down
      p.path = base + "/v1/widgets/" + num();
    } else if (u < 15) {
      const std::size_t ps = (rng() % prefix_services) * kPrefixEvery;
      p.path = svc(ps, true) + "/static/app-" + num() + ".js";
      p.expect = svc(ps) + "-static";
    } else {
      std::size_t k = rng() % 10;
      if (k == 9 && s % kPrefixEvery == 0) k = 0;        // that service has no /v2/status
      if (s * kRoutesPerService + k >= routes) continue; // last block may be partial
      const RouteShape& sh = kShapes[k];
      switch (k) {
      case 3:
        p.path = base + "/v1/items/" + num();
        break;
      case 4:
        p.path = base + "/v1/items/" + num();
        p.method = model::Method::PUT;
        break;
      case 2:
        p.path = base + "/v1/items";
        p.method = model::Method::POST;
        break;
      case 5:
        p.path = base + "/v1/users/u" + num();
        break;
      case 6:
        p.path = base + "/v1/users/u" + num() + "/orders/" + num();
        break;
      case 7:
        p.path = base + "/v1/users/u" + num() + "/orders/" + num() + "/lines/" + num();
        break;
      case 8:
        p.path = base + "/v1/files/report-" + num() + ".pdf";
        break;
      default:
        p.path = base + sh.pattern;
        break;
      }
      p.expect = base.substr(1) + "-" + sh.suffix;
    }
    out.push_back(std::move(p));
  }
  return out;
}

/// Runs the spec pipeline up to the matcher; errors are returned as text.
struct Built {
  std::shared_ptr<const model::Config> config;
  std::optional<router::RouteTable> table;
  std::string error;
};

Built build_from_toml(std::string text) {
  Built b;
  spec::SourceSet sources;
  spec::Document doc;
  Diagnostics diags;
  spec::read_toml("bench.toml", std::move(text), sources, doc, diags);
  model::Config cfg = model::validate(doc, diags); // only usable without errors
  if (diags.has_errors()) {
    for (const auto& d : diags)
      if (d.severity == Severity::error) {
        b.error = d.to_string();
        break;
      }
    return b;
  }
  b.config = std::make_shared<const model::Config>(std::move(cfg));
  auto rt = router::RouteTable::build(b.config);
  if (!rt) {
    b.error = rt.error().to_string();
    return b;
  }
  b.table.emplace(std::move(*rt));
  return b;
}

struct LookupFixture {
  Built built;
  std::vector<Probe> probes;
  std::vector<router::Request> requests; // view `probes`
  std::string error;
};

/// Built once per size: a 100k-route table takes a while and benchmark functions run repeatedly.
const LookupFixture& lookup_fixture(std::size_t routes) {
  static std::map<std::size_t, std::unique_ptr<LookupFixture>> cache;
  auto& slot = cache[routes];
  if (slot) return *slot;
  slot = std::make_unique<LookupFixture>();
  LookupFixture& f = *slot;
  f.built = build_from_toml(make_spec(routes));
  if (!f.built.error.empty()) {
    f.error = f.built.error;
    return f;
  }
  f.probes = make_probes(routes);
  std::string buf;
  for (auto& p : f.probes) {
    // The router takes canonical paths; check the generated ones already are.
    auto t = uri::parse_target(p.path, buf);
    if (!t || t->path != p.path) {
      f.error = "probe path is not canonical: " + p.path;
      return f;
    }
    router::Request req;
    req.host = "api.example.com";
    req.method = p.method;
    req.path = p.path;
    f.requests.push_back(req);
  }
  // Check every probe routes where intended, so the benchmark measures real hits and misses.
  const auto& rt = *f.built.table;
  for (std::size_t i = 0; i < f.probes.size(); ++i) {
    const router::Match m = rt.match(f.requests[i]);
    const std::string got = m.matched() ? rt.config().routes[m.route].name : "";
    if (got != f.probes[i].expect) {
      f.error =
          f.probes[i].path + " matched \"" + got + "\", expected \"" + f.probes[i].expect + "\"";
      return f;
    }
  }
  return f;
}

// 1. Lookup over a rotating set of paths: the table's memory is touched as real traffic would.
void BM_match(benchmark::State& state) {
  const auto& f = lookup_fixture(static_cast<std::size_t>(state.range(0)));
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  const auto& rt = *f.built.table;
  std::size_t i = 0;
  for (auto _ : state) {
    router::Match m = rt.match(f.requests[i]);
    benchmark::DoNotOptimize(m);
    i = (i + 1) & (kRequests - 1);
  }
  std::size_t misses = 0;
  for (const auto& p : f.probes)
    misses += p.expect.empty() ? 1 : 0;
  state.counters["routes"] = static_cast<double>(f.built.config->routes.size());
  state.counters["miss%"] = 100.0 * static_cast<double>(misses) / kRequests;
}
BENCHMARK(BM_match)->Arg(10)->Arg(1000)->Arg(100000);

// The same path over and over: the table stays in cache, isolating the algorithm from memory.
// The path is a two-parameter template hit at every size ("/svcNNNNN/v1/users/uNNNN/orders/NNNN").
void BM_match_hot(benchmark::State& state) {
  const auto& f = lookup_fixture(static_cast<std::size_t>(state.range(0)));
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  const auto& rt = *f.built.table;
  std::size_t pick = 0;
  while (pick + 1 < f.probes.size() && !f.probes[pick].expect.ends_with("-get-order"))
    ++pick;
  router::Request req = f.requests[pick];
  for (auto _ : state) {
    benchmark::DoNotOptimize(req);
    router::Match m = rt.match(req);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_match_hot)->Arg(10)->Arg(1000)->Arg(100000);

constexpr std::size_t kCompileRoutes = 100'000;

const std::string& compile_spec() {
  static const std::string text = make_spec(kCompileRoutes);
  return text;
}

/// What `gwctl compile` does for one spec: TOML text to .gwrt bytes, with the conflict analysis.
/// Phase times are reported as counters so a miss of the goal points at the slow phase.
void BM_compile_100k(benchmark::State& state) {
  const std::string& spec_text = compile_spec();
  Phases ph;
  bench::CompileTimes times;
  double read_s = 0;
  std::size_t bytes = 0, warnings = 0;
  for (auto _ : state) {
    std::string text = spec_text; // read_toml consumes its input
    spec::SourceSet sources;
    spec::Document doc;
    Diagnostics diags;
    ph.time(read_s, [&] {
      spec::read_toml("bench.toml", std::move(text), sources, doc, diags);
      return 0;
    });
    auto out = bench::compile_timed(ph, times, doc, diags, state);
    if (!out) return;
    ph.finish(state);
    bytes = out->table.size();
    warnings = diags.warning_count();
    benchmark::DoNotOptimize(out->table.data());
  }
  state.counters["read_ms"] = Phases::avg_ms(read_s, state);
  times.report(state);
  state.counters["cpu_ms"] = ph.cpu_ms(state);
  state.counters["spec_MB"] = static_cast<double>(compile_spec().size()) / 1e6;
  state.counters["gwrt_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["warnings"] = static_cast<double>(warnings);
}
BENCHMARK(BM_compile_100k)->Unit(benchmark::kMillisecond)->Iterations(1)->UseManualTime();

/// The .gwrt bytes of the 100k spec, compiled once.
const std::vector<unsigned char>& compiled_table() {
  static const std::vector<unsigned char> bytes = [] {
    Built b = build_from_toml(compile_spec());
    return b.config ? table::encode(*b.config) : std::vector<unsigned char>{};
  }();
  return bytes;
}

// 2b. What the daemon does at load: decode the table (input is hostile) and build the matcher.
void BM_load_100k(benchmark::State& state) {
  const auto& bytes = compiled_table();
  if (bytes.empty()) {
    state.SkipWithError("compiling the spec failed");
    return;
  }
  Phases ph;
  double decode_s = 0, build_s = 0;
  for (auto _ : state) {
    auto decoded = ph.time(decode_s, [&] { return table::decode(bytes); });
    if (!decoded) {
      state.SkipWithError("decode failed");
      return;
    }
    auto rt = ph.time(build_s, [&] {
      return router::RouteTable::build(
          std::make_shared<const model::Config>(std::move(decoded->config)));
    });
    if (!rt) {
      state.SkipWithError("RouteTable::build failed");
      return;
    }
    ph.finish(state);
    benchmark::DoNotOptimize(rt->config().routes.data());
  }
  state.counters["decode_ms"] = Phases::avg_ms(decode_s, state);
  state.counters["build_ms"] = Phases::avg_ms(build_s, state);
  state.counters["cpu_ms"] = ph.cpu_ms(state);
}
BENCHMARK(BM_load_100k)->Unit(benchmark::kMillisecond)->Iterations(1)->UseManualTime();

// 3. Request-target normalisation; `buf` is reused as the server reuses it per connection.
void BM_parse_target(benchmark::State& state, const char* target) {
  std::string buf;
  const std::string_view t = target;
  for (auto _ : state) {
    auto r = uri::parse_target(t, buf);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK_CAPTURE(BM_parse_target, typical, "/svc00042/v1/users/u1234/orders/5678?expand=lines");
BENCHMARK_CAPTURE(BM_parse_target, encoded,
                  "/svc00042/v1/users/%7Eu1234/./orders//5678/../5679?expand=lines");

} // namespace
