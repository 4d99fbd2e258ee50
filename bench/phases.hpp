// Phase timing shared by the compile benchmarks, and the timed half of `gwctl compile` that
// follows reading a document (validate, build, analyse, encode).
#pragma once

#include <benchmark/benchmark.h>
#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "gw/model/validate.hpp"
#include "gw/router/analysis.hpp"
#include "gw/router/route_table.hpp"
#include "gw/table/codec.hpp"

namespace gw::bench {

/// Accumulates named phase times; the iteration time is their wall-clock sum (benchmarks use
/// manual time, so input copies and freeing the results stay out of the figure). Thread CPU time
/// is kept too: on a shared machine it is the steadier of the two.
class Phases {
public:
  template <class F>
  auto time(double& acc, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_s();
    auto r = f();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu_ += thread_cpu_s() - c0;
    acc += s;
    iter_ += s;
    return r;
  }
  /// Reports this iteration's time and starts the next.
  void finish(benchmark::State& state) {
    state.SetIterationTime(iter_);
    iter_ = 0;
  }
  /// Per-iteration averages in ms: `acc` (wall) and all phases' CPU time.
  static double avg_ms(double acc, const benchmark::State& state) {
    return acc * 1e3 / static_cast<double>(state.iterations());
  }
  double cpu_ms(const benchmark::State& state) const { return avg_ms(cpu_, state); }

private:
  static double thread_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  double iter_ = 0, cpu_ = 0;
};

/// Time spent in each step after reading, summed over iterations.
struct CompileTimes {
  double validate_s = 0, build_s = 0, analyze_s = 0, encode_s = 0;

  void report(benchmark::State& state) const {
    state.counters["validate_ms"] = Phases::avg_ms(validate_s, state);
    state.counters["build_ms"] = Phases::avg_ms(build_s, state);
    state.counters["analyze_ms"] = Phases::avg_ms(analyze_s, state);
    state.counters["encode_ms"] = Phases::avg_ms(encode_s, state);
  }
};

struct Compiled {
  std::vector<unsigned char> table;
  std::size_t routes = 0;
};

/// A read document to .gwrt bytes, each step timed; nullopt (and the benchmark skipped) when
/// the document does not compile.
inline std::optional<Compiled> compile_timed(Phases& ph, CompileTimes& t, const spec::Document& doc,
                                             Diagnostics& diags, benchmark::State& state) {
  model::Config cfg = ph.time(t.validate_s, [&] { return model::validate(doc, diags); });
  if (diags.has_errors()) {
    state.SkipWithError("the document does not validate");
    return std::nullopt;
  }
  auto config = std::make_shared<const model::Config>(std::move(cfg));
  auto rt = ph.time(t.build_s, [&] { return router::RouteTable::build(config); });
  if (!rt) {
    state.SkipWithError("RouteTable::build failed");
    return std::nullopt;
  }
  ph.time(t.analyze_s, [&] {
    router::analyze(*rt, diags);
    return 0;
  });
  Compiled out;
  out.table = ph.time(t.encode_s, [&] { return table::encode(*config); });
  out.routes = config->routes.size();
  return out;
}

} // namespace gw::bench
