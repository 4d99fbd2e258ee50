// JSON views of configuration objects and routing decisions, shared by gwctl's offline
// commands and the daemon's control socket, so both print the same thing.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "gw/model/config.hpp"
#include "gw/router/route_table.hpp"

namespace gw::report {

std::string match_text(const gw::model::Route& r); // "template /pets/{id}"
std::string hosts_text(const gw::model::Route& r); // "api.example.com, *.example.com" or "*"
std::string conditions_text(const gw::model::Route& r);
nlohmann::json route_json(const gw::model::Config& cfg, const gw::model::Route& r);
nlohmann::json upstream_json(const gw::model::Config& cfg, const gw::model::Upstream& u);

/// The routing decision for one request, with its reasons (router::explain), as JSON:
/// {status, host, path, query, host_groups, route?, params?, forward?, allow?, candidates, notes}.
nlohmann::json explain_json(const gw::router::RouteTable& table, const gw::router::Request& req,
                            std::string_view method, std::string_view original_host);

} // namespace gw::report
