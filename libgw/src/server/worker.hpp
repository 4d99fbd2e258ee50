// Private: a worker thread with its own io_context, listeners (SO_REUSEPORT) and WorkerState.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <thread>

#include "gw/server/daemon.hpp"
#include "worker_state.hpp"

namespace gw::server {

class Worker {
public:
  Worker(unsigned id, const DaemonOptions& opts, observe::LogFile* log, runtime::SnapshotPtr snap);
  ~Worker();

  /// Opens this worker's listeners. Errors name the address.
  Result<void> listen(const std::vector<boost::asio::ip::tcp::endpoint>& addrs);
  /// The addresses the listeners are bound to, in `listen` order: port 0 becomes the port the
  /// kernel chose.
  std::vector<boost::asio::ip::tcp::endpoint> bound() const;
  void start();
  /// Runs `fn` on this worker's thread (worker state is touched nowhere else).
  void post(std::function<void(WorkerState&)> fn);
  /// Stops accepting, lets in-flight requests finish until `deadline`, then stops. Any thread.
  void drain(std::chrono::steady_clock::time_point deadline);
  void join();

private:
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& a);
  boost::asio::awaitable<void> housekeeping();

  // Declared before the io_context so that it outlives it: destroying the context destroys the
  // coroutines still suspended on it, and their sessions refer to this state.
  std::unique_ptr<WorkerState> state_;
  // One thread runs this context and only it touches its sockets: the reactor needs no locks.
  boost::asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::thread thread_;
};

} // namespace gw::server
