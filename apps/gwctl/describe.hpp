// Shared descriptions of config objects for human and JSON output (inspect, explain).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "gw/model/config.hpp"

namespace gwctl {

std::string match_text(const gw::model::Route& r); // "template /pets/{id}"
std::string hosts_text(const gw::model::Route& r); // "api.example.com, *.example.com" or "*"
std::string conditions_text(const gw::model::Route& r);
nlohmann::json route_json(const gw::model::Config& cfg, const gw::model::Route& r);
nlohmann::json upstream_json(const gw::model::Config& cfg, const gw::model::Upstream& u);

} // namespace gwctl
