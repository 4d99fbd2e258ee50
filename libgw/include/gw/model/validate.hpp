// model::validate: spec::Document -> model::Config, collecting every problem (never just the
// first). Route-overlap analysis needs the router and lives in router/analysis.hpp.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "gw/core/diagnostics.hpp"
#include "gw/model/config.hpp"
#include "gw/spec/document.hpp"

namespace gw::model {

/// Validates `doc`, appending every problem to `diags` with its location. Returns what is valid
/// (definitions with errors are left out), so later checks can still look at the rest; the
/// Config is only usable when `diags` has no errors.
Config validate(const spec::Document& doc, Diagnostics& diags);

/// Host names as routes store them: lowercase, no trailing dot; "*.example.com" wildcards.
/// Returns an error message, or empty when `host` is acceptable.
std::string check_host(std::string_view host);

} // namespace gw::model
