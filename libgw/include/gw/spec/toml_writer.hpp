// Writes a spec::Document as a TOML route spec: what `gwctl openapi import` hands over for
// editing. Every definition carries a comment naming where it came from; values are formatted by
// toml++ so quoting and escaping follow the TOML grammar. Reading the output back with
// toml_reader gives the same model::Config.
#pragma once

#include <string>
#include <string_view>

#include "gw/spec/document.hpp"

namespace gw::spec {

/// `header` lines are written as comments at the top.
std::string write_toml(const Document& doc, std::string_view header = {});

} // namespace gw::spec
