// runtime::Snapshot: everything one table generation needs at request time, built once on the
// main thread and shared read-only (shared_ptr<const Snapshot>) by every worker. A request pins
// the snapshot it started with; a reload publishes a new one (see server/daemon).
#pragma once

#include <chrono>
#include <memory>
#include <netinet/in.h>
#include <string>
#include <vector>

#include "gw/core/error.hpp"
#include "gw/core/sha256.hpp"
#include "gw/model/config.hpp"
#include "gw/policy/route_chain.hpp"
#include "gw/router/route_table.hpp"
#include "gw/table/format.hpp"

namespace gw::runtime {

/// An endpoint with its address resolved when the snapshot was built.
struct ResolvedEndpoint {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string address; // "127.0.0.1:9001", as in the spec
  std::uint32_t weight = 1;
};

class Snapshot {
public:
  /// Reads, verifies and decodes a table, resolves every endpoint, builds the router. `source`
  /// is the file the snapshot says it is served from (default `path`): a staged table is read
  /// from its staging file and then moved over `source`.
  static Result<std::shared_ptr<const Snapshot>>
  load(const std::string& path, std::uint64_t generation, std::string source = {});
  /// The same table as `from`, published again under a new generation (rollback), served from
  /// `source` (the file that holds it now).
  static Result<std::shared_ptr<const Snapshot>>
  republish(const Snapshot& from, std::uint64_t generation, std::string source);

  const model::Config& config() const noexcept { return routes_.config(); }
  /// Each route's policies, ready to run.
  const policy::PolicySet& policies() const noexcept { return *policies_; }
  const router::RouteTable& routes() const noexcept { return routes_; }
  const std::vector<ResolvedEndpoint>& endpoints(std::uint32_t upstream) const {
    return endpoints_[upstream];
  }
  std::uint64_t generation() const noexcept { return generation_; }
  const Sha256& digest() const noexcept { return info_.digest; }
  const table::TableInfo& info() const noexcept { return info_; }
  const std::string& source() const noexcept { return source_; }
  /// The table file's bytes as they were read: a rollback writes them back to the file, so that
  /// a later reload or restart serves what the rollback restored. Shared by republished copies.
  const std::string& file_bytes() const noexcept { return *bytes_; }
  std::chrono::system_clock::time_point loaded_at() const noexcept { return loaded_at_; }

private:
  Snapshot(router::RouteTable routes) : routes_(std::move(routes)) {}
  router::RouteTable routes_;
  std::vector<std::vector<ResolvedEndpoint>> endpoints_;
  std::shared_ptr<const policy::PolicySet> policies_;
  std::uint64_t generation_ = 0;
  table::TableInfo info_;
  std::string source_;
  std::shared_ptr<const std::string> bytes_;
  std::chrono::system_clock::time_point loaded_at_;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

/// The policy state that outlives generations (rate-limit buckets, fetched JWT keys), one per
/// process.
const policy::Registry& policy_registry();

/// Resolves "host:port" parts to a socket address (numeric addresses without DNS).
Result<ResolvedEndpoint> resolve(const model::Endpoint& ep);

} // namespace gw::runtime
