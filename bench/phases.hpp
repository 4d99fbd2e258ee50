// Phase timing shared by the compile benchmarks.
#pragma once

#include <benchmark/benchmark.h>
#include <chrono>
#include <ctime>

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

} // namespace gw::bench
