// Shell completions generated from gwctl's own command tree, so they cannot drift from it.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace gwctl {

/// The completion script for `shell` ("bash", "zsh" or "fish"), or "" for another shell.
std::string completion_script(const CLI::App& app, const std::string& shell);

} // namespace gwctl
