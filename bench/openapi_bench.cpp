// Importing and compiling GitHub's REST API description (623 operations; 3.0 MB JSON, 2.4 MB
// YAML): what `gwctl compile api.github.com.json -o t.gwrt` does, by phase.
// Goal: import + compile in under 0.5 s.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "gw/core/file.hpp"
#include "gw/model/validate.hpp"
#include "gw/router/analysis.hpp"
#include "gw/router/route_table.hpp"
#include "gw/spec/openapi_reader.hpp"
#include "gw/table/codec.hpp"
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
  double import_s = 0, validate_s = 0, build_s = 0, analyze_s = 0, encode_s = 0;
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
    model::Config cfg = ph.time(validate_s, [&] { return model::validate(doc, diags); });
    if (diags.has_errors()) {
      state.SkipWithError("the document does not validate");
      return;
    }
    auto config = std::make_shared<const model::Config>(std::move(cfg));
    auto rt = ph.time(build_s, [&] { return router::RouteTable::build(config); });
    if (!rt) {
      state.SkipWithError("RouteTable::build failed");
      return;
    }
    ph.time(analyze_s, [&] {
      router::analyze(*rt, diags);
      return 0;
    });
    auto out = ph.time(encode_s, [&] { return table::encode(*config); });
    ph.finish(state);
    routes = config->routes.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["import_ms"] = Phases::avg_ms(import_s, state);
  state.counters["validate_ms"] = Phases::avg_ms(validate_s, state);
  state.counters["build_ms"] = Phases::avg_ms(build_s, state);
  state.counters["analyze_ms"] = Phases::avg_ms(analyze_s, state);
  state.counters["encode_ms"] = Phases::avg_ms(encode_s, state);
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
