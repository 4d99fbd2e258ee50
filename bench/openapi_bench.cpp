// Importing and compiling GitHub's REST API description (623 operations; 3.0 MB JSON, 2.4 MB
// YAML): what `gwctl compile api.github.com.json -o t.gwrt` does, by phase.
// Goal: import + compile in under 0.5 s.
#include <benchmark/benchmark.h>

#include <string>

#include "gw/core/file.hpp"
#include "gw/spec/openapi_reader.hpp"
#include "phases.hpp"

namespace {

using namespace gw;
using bench::Phases;

void BM_openapi_github(benchmark::State& state, const char* file) {
  const std::string path = std::string(GW_SOURCE_DIR "/tests/data/openapi/corpus/") + file;
  auto text = file::read_all(path, spec::kMaxOpenApiBytes);
  if (!text) {
    state.SkipWithError(text.error().message.c_str());
    return;
  }
  Phases ph;
  bench::CompileTimes times;
  double import_s = 0;
  std::size_t routes = 0;
  for (auto _ : state) {
    std::string copy = *text; // read_openapi keeps its input
    spec::SourceSet sources;
    spec::Document doc;
    Diagnostics diags;
    ph.time(import_s, [&] {
      spec::read_openapi(path, std::move(copy), sources, doc, diags);
      return 0;
    });
    auto out = bench::compile_timed(ph, times, doc, diags, state);
    if (!out) return;
    ph.finish(state);
    routes = out->routes;
    benchmark::DoNotOptimize(out->table.data());
  }
  state.counters["import_ms"] = Phases::avg_ms(import_s, state);
  times.report(state);
  state.counters["cpu_ms"] = ph.cpu_ms(state);
  state.counters["routes"] = static_cast<double>(routes);
}
BENCHMARK_CAPTURE(BM_openapi_github, json, "api.github.com.json")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_openapi_github, yaml, "api.github.com.yaml")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseManualTime();

} // namespace
