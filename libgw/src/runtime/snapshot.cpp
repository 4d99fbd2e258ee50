#include "gw/runtime/snapshot.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netdb.h>

#include "gw/core/file.hpp"
#include "gw/runtime/key_source.hpp"
#include "gw/table/codec.hpp"

namespace gw::runtime {

Result<ResolvedEndpoint> resolve(const model::Endpoint& ep) {
  ResolvedEndpoint r;
  r.address = ep.address();
  r.weight = ep.weight;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(ep.port);
  const int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res)
    return fail(errc::not_found, "cannot resolve " + r.address + ": " + ::gai_strerror(rc));
  std::memcpy(&r.addr, res->ai_addr, res->ai_addrlen);
  r.addr_len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return r;
}

const policy::Registry& policy_registry() {
  static policy::BucketRegistry buckets;
  static const policy::Registry reg{&buckets, &key_source};
  return reg;
}

Result<std::shared_ptr<const Snapshot>>
Snapshot::load(const std::string& path, std::uint64_t generation, std::string source) {
  // table::read_file, keeping the bytes (see file_bytes()).
  auto bytes = file::read_all(path, table::kMaxTableBytes);
  if (!bytes) {
    const auto code =
        bytes.error().code == errc::too_large ? table::errc::too_large : table::errc::io_error;
    return fail(code, path + ": " + bytes.error().message);
  }
  auto file_bytes = std::make_shared<const std::string>(std::move(*bytes));
  auto decoded = table::decode(
      std::span(reinterpret_cast<const unsigned char*>(file_bytes->data()), file_bytes->size()));
  if (!decoded)
    return std::unexpected(Error(decoded.error().code, path + ": " + decoded.error().message));
  auto config = std::make_shared<const model::Config>(std::move(decoded->config));
  auto routes = router::RouteTable::build(config);
  if (!routes) return std::unexpected(routes.error());
  // Key sources new to this table start fetching as the policies are built; they are waited for
  // together at the end, so their first fetches overlap each other and the DNS lookups below.
  std::vector<std::shared_ptr<policy::KeySource>> sources;
  policy::Registry reg = policy_registry();
  reg.key_source = [&sources](const std::string& url, bool discovery, units::Millis refresh) {
    auto fetcher = key_source(url, discovery, refresh);
    sources.push_back(fetcher);
    return fetcher;
  };
  std::vector<policy::PolicyDef> defs;
  defs.reserve(config->policies.size());
  for (const auto& p : config->policies)
    defs.push_back(policy::PolicyDef{p.name, p.kind, p.config});
  std::vector<std::vector<std::uint32_t>> route_policies;
  route_policies.reserve(config->routes.size());
  for (const auto& r : config->routes)
    route_policies.push_back(r.policies); // in phase order (model::validate)
  auto policies = policy::PolicySet::build(defs, route_policies, reg);
  if (!policies) return std::unexpected(policies.error());
  std::shared_ptr<Snapshot> s(new Snapshot(std::move(*routes)));
  s->policies_ = std::move(*policies);
  s->info_ = std::move(decoded->info);
  s->generation_ = generation;
  s->source_ = source.empty() ? path : std::move(source);
  s->bytes_ = std::move(file_bytes);
  s->loaded_at_ = std::chrono::system_clock::now();
  for (const auto& u : config->upstreams) {
    std::vector<ResolvedEndpoint> eps;
    for (const auto& e : u.endpoints) {
      auto r = resolve(e);
      if (!r) return fail(errc::not_found, "upstream \"" + u.name + "\": " + r.error().message);
      eps.push_back(std::move(*r));
    }
    s->endpoints_.push_back(std::move(eps));
  }
  wait_first_fetch(sources);
  return std::shared_ptr<const Snapshot>(std::move(s));
}

Result<std::shared_ptr<const Snapshot>>
Snapshot::republish(const Snapshot& from, std::uint64_t generation, std::string source) {
  auto routes = router::RouteTable::build(from.routes_.config_ptr());
  if (!routes) return std::unexpected(routes.error());
  std::shared_ptr<Snapshot> s(new Snapshot(std::move(*routes)));
  s->endpoints_ = from.endpoints_;
  s->policies_ = from.policies_;
  s->info_ = from.info_;
  s->source_ = std::move(source);
  s->bytes_ = from.bytes_;
  s->generation_ = generation;
  s->loaded_at_ = std::chrono::system_clock::now();
  return std::shared_ptr<const Snapshot>(std::move(s));
}

} // namespace gw::runtime
