// check::diff: a semantic diff of two configurations (specs or tables): routes, upstreams and
// policies added, removed or changed field by field, and precedence changes between routes that
// compete for the same requests, including routes of equal precedence whose declaration order
// (which decides between them) flipped. Not a byte diff: reordering routes that never compete
// changes nothing here.
#pragma once

#include <string>
#include <vector>

#include "gw/router/route_table.hpp"

namespace gw::check {

struct Change {
  enum class Kind { added, removed, changed, precedence };
  Kind kind = Kind::changed;
  std::string object; // "route" | "upstream" | "policy"
  std::string name;
  std::vector<std::string> details; // "timeout: 5s -> 10s"
  // Precedence changes: the route `name` now outranks, and an example request that went to
  // `other` and now goes to `name` (checked with both tables' matchers; "" when none was found).
  std::string other;
  std::string example;
};

std::string_view to_string(Change::Kind k) noexcept;

std::vector<Change> diff(const router::RouteTable& old_table, const router::RouteTable& new_table);

} // namespace gw::check
