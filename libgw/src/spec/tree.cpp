#include "gw/spec/tree.hpp"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace gw::spec {

const Node* Node::get(std::string_view key) const noexcept {
  if (kind != Kind::object) return nullptr;
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

std::string Node::str(std::string_view key, std::string fallback) const {
  const Node* n = get(key);
  return n && n->is_scalar() && n->kind != Kind::null ? n->text : fallback;
}

namespace {

/// Line starts, to turn byte offsets into line and column.
class LineIndex {
public:
  explicit LineIndex(std::string_view text) {
    starts_.push_back(0);
    for (std::size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') starts_.push_back(i + 1);
  }
  std::pair<std::uint32_t, std::uint32_t> at(std::size_t offset) const {
    auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
    const std::size_t line = static_cast<std::size_t>(it - starts_.begin());
    return {static_cast<std::uint32_t>(line), static_cast<std::uint32_t>(offset - starts_[line - 1] + 1)};
  }

private:
  std::vector<std::size_t> starts_;
};

/// An input iterator that records how far nlohmann's lexer has read, so SAX events get positions.
struct CountingIterator {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  const char* p;
  std::size_t* pos;
  const char* base;
  reference operator*() const { return *p; }
  CountingIterator& operator++() {
    ++p;
    *pos = static_cast<std::size_t>(p - base);
    return *this;
  }
  bool operator==(const CountingIterator& o) const { return p == o.p; }
  bool operator!=(const CountingIterator& o) const { return p != o.p; }
};

/// Builds the tree from SAX events, stamping each node with the lexer's position.
class JsonBuilder : public nlohmann::json_sax<nlohmann::json> {
public:
  JsonBuilder(const std::size_t& pos, const LineIndex& lines, const TreeLimits& limits)
      : pos_(pos), lines_(lines), limits_(limits) {}

  std::unique_ptr<Node> root;
  std::string error;
  std::size_t error_offset = 0;

  bool null() override { return scalar(Node::Kind::null, "null"); }
  bool boolean(bool v) override { return scalar(Node::Kind::boolean, v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override { return scalar(Node::Kind::number, std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(Node::Kind::number, std::to_string(v)); }
  bool number_float(number_float_t, const string_t& s) override { return scalar(Node::Kind::number, s); }
  bool string(string_t& v) override { return scalar(Node::Kind::string, std::move(v)); }
  bool binary(binary_t&) override { return scalar(Node::Kind::string, ""); }
  bool start_object(std::size_t) override { return open(Node::Kind::object); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    key_pos_ = pos_;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Node::Kind::array); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    error = ex.what();
    error_offset = position;
    return false;
  }

private:
  Node* place(Node n) {
    if (++count_ > limits_.max_nodes) return nullptr;
    if (stack_.empty()) {
      root = std::make_unique<Node>(std::move(n));
      return root.get();
    }
    Node* parent = stack_.back();
    if (parent->kind == Node::Kind::object) {
      // The key's position is the best place to point at for a member.
      auto [line, col] = lines_.at(key_pos_ > 0 ? key_pos_ - 1 : 0);
      n.line = line;
      n.col = col;
      parent->members.emplace_back(std::move(key_), std::move(n));
      return &parent->members.back().second;
    }
    parent->items.push_back(std::move(n));
    return &parent->items.back();
  }
  Node make(Node::Kind k, std::string text = {}) {
    Node n;
    n.kind = k;
    n.text = std::move(text);
    auto [line, col] = lines_.at(pos_ > 0 ? pos_ - 1 : 0);
    n.line = line;
    n.col = col;
    return n;
  }
  bool scalar(Node::Kind k, std::string text) { return place(make(k, std::move(text))) != nullptr || fail_limit(); }
  bool open(Node::Kind k) {
    if (stack_.size() >= limits_.max_depth) {
      error = "nesting deeper than " + std::to_string(limits_.max_depth) + " levels";
      error_offset = pos_;
      return false;
    }
    Node* n = place(make(k));
    if (!n) return fail_limit();
    stack_.push_back(n);
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
  bool fail_limit() {
    error = "more than " + std::to_string(limits_.max_nodes) + " values";
    error_offset = pos_;
    return false;
  }

  const std::size_t& pos_;
  const LineIndex& lines_;
  const TreeLimits& limits_;
  std::vector<Node*> stack_;
  std::string key_;
  std::size_t key_pos_ = 0;
  std::size_t count_ = 0;
};

std::unique_ptr<Node> parse_json(std::string_view name, std::string_view text, Diagnostics& diags,
                                 const TreeLimits& limits) {
  const LineIndex lines(text);
  std::size_t pos = 0;
  JsonBuilder b(pos, lines, limits);
  CountingIterator first{text.data(), &pos, text.data()}, last{text.data() + text.size(), &pos, text.data()};
  const bool ok = nlohmann::json::sax_parse(first, last, &b, nlohmann::json::input_format_t::json, false);
  if (!ok || !b.root) {
    auto [line, col] = lines.at(std::min(b.error_offset > 0 ? b.error_offset - 1 : 0, text.empty() ? 0 : text.size() - 1));
    std::string msg = b.error.empty() ? "not a JSON document" : b.error;
    // nlohmann prefixes its messages with "[json.exception.parse_error.101] parse error at ...: ".
    if (const auto p = msg.find("]: "); p != std::string::npos) msg = msg.substr(p + 3);
    else if (const auto q = msg.find("] "); q != std::string::npos) msg = msg.substr(q + 2);
    diags.error("openapi.syntax", SourceLoc{name, line, col}, msg);
    return nullptr;
  }
  return std::move(b.root);
}

/// Refuses YAML whose nesting would overflow yaml-cpp's recursive parser, before parsing.
std::string yaml_prescan(std::string_view text, const TreeLimits& limits) {
  std::size_t flow = 0, max_flow = 0;
  bool in_single = false, in_double = false;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      line_start = i + 1;
      in_single = in_double = false; // quoted flow scalars rarely span lines; be conservative
      continue;
    }
    if (i == line_start) {
      std::size_t indent = 0, dashes = 0, j = i;
      while (j < text.size() && (text[j] == ' ' || text[j] == '-')) {
        if (text[j] == '-' && j + 1 < text.size() && text[j + 1] == ' ') ++dashes;
        ++indent;
        ++j;
      }
      if (indent > 4 * limits.max_depth || dashes > limits.max_depth)
        return "nesting deeper than " + std::to_string(limits.max_depth) + " levels";
    }
    if (in_double) {
      if (c == '\\') ++i;
      else if (c == '"') in_double = false;
      continue;
    }
    if (in_single) {
      if (c == '\'') in_single = false;
      continue;
    }
    if (c == '"') in_double = true;
    else if (c == '\'' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '[' || text[i - 1] == '{' || text[i - 1] == ','))
      in_single = true;
    else if (c == '#' && (i == 0 || text[i - 1] == ' ')) {
      while (i < text.size() && text[i] != '\n') ++i;
      --i;
    } else if (c == '[' || c == '{') max_flow = std::max(max_flow, ++flow);
    else if ((c == ']' || c == '}') && flow > 0) --flow;
  }
  if (max_flow > limits.max_depth) return "nesting deeper than " + std::to_string(limits.max_depth) + " levels";
  return "";
}

class YamlBuilder {
public:
  YamlBuilder(const TreeLimits& limits) : limits_(limits) {}
  std::string error;
  std::uint32_t error_line = 0, error_col = 0;

  bool build(const YAML::Node& y, Node& out, std::size_t depth) {
    if (++count_ > limits_.max_nodes) {
      // Aliases share nodes in yaml-cpp; expanding them is what an alias bomb attacks.
      error = "more than " + std::to_string(limits_.max_nodes) + " values after expanding aliases (an alias bomb?)";
      return false;
    }
    if (depth > limits_.max_depth) {
      error = "nesting deeper than " + std::to_string(limits_.max_depth) + " levels";
      return false;
    }
    const auto mark = y.Mark();
    out.line = mark.line >= 0 ? static_cast<std::uint32_t>(mark.line + 1) : 0;
    out.col = mark.column >= 0 ? static_cast<std::uint32_t>(mark.column + 1) : 0;
    switch (y.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: out.kind = Node::Kind::null; break;
    case YAML::NodeType::Scalar: {
      out.text = y.Scalar();
      // Quoted scalars are strings; plain ones may be booleans, numbers or null (YAML core schema).
      if (y.Tag() == "!" ) {
        out.kind = Node::Kind::string;
      } else if (out.text == "true" || out.text == "false" || out.text == "True" || out.text == "False") {
        out.kind = Node::Kind::boolean;
        out.text = out.text == "true" || out.text == "True" ? "true" : "false";
      } else if (out.text == "null" || out.text == "~" || out.text.empty()) {
        out.kind = Node::Kind::null;
      } else if (looks_numeric(out.text)) {
        out.kind = Node::Kind::number;
      } else {
        out.kind = Node::Kind::string;
      }
      break;
    }
    case YAML::NodeType::Sequence:
      out.kind = Node::Kind::array;
      out.items.reserve(y.size());
      for (const auto& el : y) {
        out.items.emplace_back();
        if (!build(el, out.items.back(), depth + 1)) return false;
      }
      break;
    case YAML::NodeType::Map:
      out.kind = Node::Kind::object;
      for (const auto& kv : y) {
        std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
        out.members.emplace_back(std::move(key), Node{});
        Node& child = out.members.back().second;
        if (!build(kv.second, child, depth + 1)) return false;
        // Point members at their key, like the JSON reader does.
        const auto km = kv.first.Mark();
        if (km.line >= 0) {
          child.line = static_cast<std::uint32_t>(km.line + 1);
          child.col = static_cast<std::uint32_t>(km.column + 1);
        }
      }
      break;
    }
    return true;
  }

private:
  static bool looks_numeric(const std::string& s) {
    std::size_t i = 0;
    if (s[0] == '-' || s[0] == '+') i = 1;
    if (i >= s.size()) return false;
    bool digit = false;
    for (; i < s.size(); ++i) {
      const char c = s[i];
      if (c >= '0' && c <= '9') digit = true;
      else if (c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+') return false;
    }
    return digit;
  }
  const TreeLimits& limits_;
  std::size_t count_ = 0;
};

/// Visits at most `budget` nodes of the expanded tree; false when there are more.
bool within(const YAML::Node& y, std::size_t& budget) {
  if (budget == 0) return false;
  --budget;
  if (y.IsSequence()) {
    for (const auto& el : y)
      if (!within(el, budget)) return false;
  } else if (y.IsMap()) {
    for (const auto& kv : y)
      if (!within(kv.second, budget)) return false;
  }
  return true;
}

std::unique_ptr<Node> parse_yaml(std::string_view name, std::string_view text, Diagnostics& diags,
                                 const TreeLimits& limits) {
  if (auto why = yaml_prescan(text, limits); !why.empty()) {
    diags.error("openapi.too-complex", SourceLoc{name, 1, 1}, "refused: " + why);
    return nullptr;
  }
  YAML::Node y;
  try {
    y = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    diags.error("openapi.syntax", SourceLoc{name, static_cast<std::uint32_t>(e.mark.line + 1), static_cast<std::uint32_t>(e.mark.column + 1)},
                e.msg);
    return nullptr;
  }
  // Aliases share nodes in yaml-cpp, so a small document can expand to billions of values (an
  // alias bomb). Count the expansion first, without allocating, when there may be aliases.
  if (text.find('*') != std::string_view::npos) {
    std::size_t budget = limits.max_nodes;
    if (!within(y, budget)) {
      diags.error("openapi.too-complex", SourceLoc{name, 1, 1},
                  "refused: more than " + std::to_string(limits.max_nodes) +
                      " values after expanding aliases (an alias bomb?)");
      return nullptr;
    }
  }
  auto root = std::make_unique<Node>();
  YamlBuilder b(limits);
  if (!b.build(y, *root, 0)) {
    diags.error("openapi.too-complex", SourceLoc{name, 1, 1}, "refused: " + b.error);
    return nullptr;
  }
  return root;
}

} // namespace

std::unique_ptr<Node> parse_tree(std::string_view name, std::string_view text, Diagnostics& diags,
                                 TreeFormat* format, const TreeLimits& limits) {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) ++i;
  // A UTF-8 byte order mark is allowed in front of either format.
  if (text.substr(i, 3) == "\xEF\xBB\xBF") i += 3;
  const bool json = i < text.size() && (text[i] == '{' || text[i] == '[');
  if (format) *format = json ? TreeFormat::json : TreeFormat::yaml;
  return json ? parse_json(name, text, diags, limits) : parse_yaml(name, text, diags, limits);
}

} // namespace gw::spec
