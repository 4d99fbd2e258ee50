// gwctl's --help layout: CLI11's, without its parser internals. Options show the type name
// main.cpp gives them ("SPEC", "auto|always|never"), "(repeatable)" and "(required)"; never
// "TEXT", "ENUM:value in {...}" or "x 2".
#pragma once

#include <memory>

namespace CLI {
class Formatter;
}

namespace gwctl {

/// The formatter for the root App; set it before adding subcommands, which copy it.
std::shared_ptr<CLI::Formatter> help_formatter();

} // namespace gwctl
