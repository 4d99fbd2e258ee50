// A JSON/YAML document as a tree with the line and column of every node, for the OpenAPI reader:
// JSON through nlohmann's SAX parser (fast, positions tracked by the input iterator), YAML through
// yaml-cpp (marks). Hostile YAML (alias bombs, deep nesting) is refused before it costs memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gw/core/diagnostics.hpp"

namespace gw::spec {

struct Node {
  enum class Kind : std::uint8_t { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  std::string text;                                  // scalars as written ("true", "42", "abc")
  std::vector<Node> items;                           // arrays
  std::vector<std::pair<std::string, Node>> members; // objects, in document order
  std::uint32_t line = 0, col = 0;

  bool is_object() const noexcept { return kind == Kind::object; }
  bool is_array() const noexcept { return kind == Kind::array; }
  bool is_string() const noexcept { return kind == Kind::string; }
  bool is_scalar() const noexcept { return kind != Kind::array && kind != Kind::object; }
  const Node* get(std::string_view key) const noexcept;
  /// The string value of member `key`, or `fallback`.
  std::string str(std::string_view key, std::string fallback = {}) const;
};

enum class TreeFormat { json, yaml };

struct TreeLimits {
  std::size_t max_nodes = 2'000'000; // after alias expansion (GitHub's API has 57,000)
  std::size_t max_depth = 200;
};

/// Parses `text` (JSON when it starts with '{' or '[', else YAML) into a tree. On failure adds a
/// diagnostic at the position of the problem and returns null.
std::unique_ptr<Node> parse_tree(std::string_view name, std::string_view text, Diagnostics& diags,
                                 TreeFormat* format = nullptr, const TreeLimits& limits = {});

} // namespace gw::spec
