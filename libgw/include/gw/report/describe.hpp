// JSON views of configuration objects and routing decisions, shared by gwctl's offline
// commands and the daemon's control socket, so both print the same thing.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "gw/model/config.hpp"
#include "gw/router/route_table.hpp"

namespace gw::report {

/// "template /pets/{id}", "regex ^/v[0-9]+/ (priority 0)".
std::string match_text(const gw::model::Route& r);
nlohmann::json route_json(const gw::model::Config& cfg, const gw::model::Route& r);

/// The cells of a route table, rendered from route_json's view so that `gwctl inspect` (a file)
/// and `gwctl routes` (the running gwd) show a route alike. Missing members render as "-".
std::string match_cell(const nlohmann::json& route);      // as match_text
std::string hosts_cell(const nlohmann::json& route);      // "api.example.com, *.example.com" or "*"
std::string conditions_cell(const nlohmann::json& route); // header x-v exact "2"; query !debug
nlohmann::json upstream_json(const gw::model::Config& cfg, const gw::model::Upstream& u);

/// The routing decision for one request, with its reasons (router::explain), as JSON:
/// {status, host, path, query, host_groups, route?, params?, forward?, allow?, candidates, notes}.
nlohmann::json explain_json(const gw::router::RouteTable& table, const gw::router::Request& req,
                            std::string_view method, std::string_view original_host);

} // namespace gw::report
