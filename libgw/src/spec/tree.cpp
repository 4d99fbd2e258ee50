#include "gw/spec/tree.hpp"

#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/eventhandler.h>
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
    return {static_cast<std::uint32_t>(line),
            static_cast<std::uint32_t>(offset - starts_[line - 1] + 1)};
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
  JsonBuilder(std::string_view text, const std::size_t& pos, const LineIndex& lines,
              const TreeLimits& limits)
      : text_(text), pos_(pos), lines_(lines), limits_(limits) {}

  std::unique_ptr<Node> root;
  std::string error;
  std::size_t error_offset = 0;
  bool too_complex = false; // a limit, not a syntax error

  bool null() override { return scalar(Node::Kind::null, "null"); }
  bool boolean(bool v) override { return scalar(Node::Kind::boolean, v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override {
    return scalar(Node::Kind::number, std::to_string(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    return scalar(Node::Kind::number, std::to_string(v));
  }
  bool number_float(number_float_t, const string_t& s) override {
    return scalar(Node::Kind::number, s);
  }
  bool string(string_t& v) override { return scalar(Node::Kind::string, std::move(v)); }
  bool binary(binary_t&) override { return scalar(Node::Kind::string, ""); }
  bool start_object(std::size_t) override { return open(Node::Kind::object); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    key_pos_ = string_start();
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Node::Kind::array); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
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
      auto [line, col] = lines_.at(key_pos_);
      n.line = line;
      n.col = col;
      parent->members.emplace_back(std::move(key_), std::move(n));
      return &parent->members.back().second;
    }
    parent->items.push_back(std::move(n));
    return &parent->items.back();
  }
  /// The opening quote of the string the lexer has just read (pos_ is past its closing quote).
  std::size_t string_start() const {
    std::size_t i = pos_ > 0 ? pos_ - 1 : 0; // the closing quote
    while (i > 0) {
      --i;
      if (text_[i] != '"') continue;
      std::size_t backslashes = 0;
      while (backslashes < i && text_[i - 1 - backslashes] == '\\')
        ++backslashes;
      if (backslashes % 2 == 0) return i;
    }
    return 0;
  }
  Node make(Node::Kind k, std::string text = {}) {
    Node n;
    n.kind = k;
    n.text = std::move(text);
    auto [line, col] = lines_.at(k == Node::Kind::string ? string_start()
                                 : pos_ > 0              ? pos_ - 1
                                                         : 0);
    n.line = line;
    n.col = col;
    return n;
  }
  bool scalar(Node::Kind k, std::string text) {
    return place(make(k, std::move(text))) != nullptr || fail_limit();
  }
  bool open(Node::Kind k) {
    if (stack_.size() >= limits_.max_depth) {
      error = "nesting deeper than " + std::to_string(limits_.max_depth) + " levels";
      error_offset = pos_;
      too_complex = true;
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
    too_complex = true;
    return false;
  }

  std::string_view text_;
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
  JsonBuilder b(text, pos, lines, limits);
  CountingIterator first{text.data(), &pos, text.data()},
      last{text.data() + text.size(), &pos, text.data()};
  const bool ok =
      nlohmann::json::sax_parse(first, last, &b, nlohmann::json::input_format_t::json, false);
  if (!ok || !b.root) {
    auto [line, col] = lines.at(
        std::min(b.error_offset > 0 ? b.error_offset - 1 : 0, text.empty() ? 0 : text.size() - 1));
    std::string msg = b.error.empty() ? "not a JSON document" : b.error;
    // nlohmann prefixes its messages with "[json.exception.parse_error.101] parse error at ...: ".
    if (const auto p = msg.find("]: "); p != std::string::npos)
      msg = msg.substr(p + 3);
    else if (const auto q = msg.find("] "); q != std::string::npos)
      msg = msg.substr(q + 2);
    if (b.too_complex) msg = "refused: " + msg;
    diags.error(b.too_complex ? "openapi.too-complex" : "openapi.syntax",
                SourceLoc{name, line, col}, msg);
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
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_double = false;
      continue;
    }
    if (in_single) {
      if (c == '\'') in_single = false;
      continue;
    }
    if (c == '"')
      in_double = true;
    else if (c == '\'' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '[' ||
                           text[i - 1] == '{' || text[i - 1] == ','))
      in_single = true;
    else if (c == '#' && (i == 0 || text[i - 1] == ' ')) {
      while (i < text.size() && text[i] != '\n')
        ++i;
      --i;
    } else if (c == '[' || c == '{')
      max_flow = std::max(max_flow, ++flow);
    else if ((c == ']' || c == '}') && flow > 0)
      --flow;
  }
  if (max_flow > limits.max_depth)
    return "nesting deeper than " + std::to_string(limits.max_depth) + " levels";
  return "";
}

/// YAML 1.2 core-schema numbers: int `[-+]?[0-9]+`, float
/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`. Anything else, such as `10.0.0.5`,
/// `1.2.3` or `2024-01-01`, is a string, as its JSON twin would be.
bool looks_numeric(std::string_view s) {
  std::size_t i = 0;
  auto sign = [&] {
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  };
  auto digits = [&] {
    const std::size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    return i - from;
  };
  sign();
  std::size_t mantissa = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    sign();
    if (digits() == 0) return false;
  }
  return i == s.size();
}

struct Refused {
  std::string why;
};

/// Builds the tree straight from yaml-cpp's parser events (no YAML::Node graph in between: that
/// halves the time for large documents). Aliases are expanded by copying the anchored value, and
/// every value created counts against the limit, so an alias bomb is refused before its
/// expansion is allocated.
class YamlEvents final : public YAML::EventHandler {
public:
  explicit YamlEvents(const TreeLimits& limits) : limits_(limits) {}
  std::unique_ptr<Node> root;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Node n = make(mark, Node::Kind::null);
    finish(std::move(n), anchor, 1);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw Refused{"alias to an unknown anchor"};
    // Real documents use aliases sparingly: the values they add may not outnumber the values
    // written out (plus some slack). A bomb is refused after a few megabytes.
    const std::size_t size = it->second.second;
    aliased_ += size;
    if (aliased_ > std::max<std::size_t>(kAliasSlack, count_ - aliased_ + size))
      throw Refused{
          "YAML aliases expand to more values than the document writes out (an alias bomb?)"};
    charge(size);
    Node n = it->second.first; // copied: the tree owns each value once
    n.line = mark.line >= 0 ? static_cast<std::uint32_t>(mark.line + 1) : 0;
    n.col = mark.column >= 0 ? static_cast<std::uint32_t>(mark.column + 1) : 0;
    place(std::move(n));
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    charge(1);
    Node n = make(mark, Node::Kind::string);
    n.text = value;
    // Quoted scalars (tag "!") are strings; plain ones ("?") may be booleans, numbers or null.
    if (tag != "!") {
      if (value == "true" || value == "True" || value == "false" || value == "False") {
        n.kind = Node::Kind::boolean;
        n.text = value[0] == 't' || value[0] == 'T' ? "true" : "false";
      } else if (value == "null" || value == "~" || value.empty()) {
        n.kind = Node::Kind::null;
      } else if (looks_numeric(value)) {
        n.kind = Node::Kind::number;
      }
    }
    finish(std::move(n), anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(make(mark, Node::Kind::array), anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(make(mark, Node::Kind::object), anchor);
  }
  void OnMapEnd() override { close(); }

private:
  struct Open {
    Node node;
    YAML::anchor_t anchor = 0;
    std::size_t start_count = 0; // values created before it, to size an anchored value
    bool want_key = true;        // objects: the next value is a key
    std::string key;
    std::uint32_t key_line = 0, key_col = 0;
  };

  static Node make(const YAML::Mark& mark, Node::Kind kind) {
    Node n;
    n.kind = kind;
    n.line = mark.line >= 0 ? static_cast<std::uint32_t>(mark.line + 1) : 0;
    n.col = mark.column >= 0 ? static_cast<std::uint32_t>(mark.column + 1) : 0;
    return n;
  }

  void charge(std::size_t n) {
    count_ += n;
    if (count_ > limits_.max_nodes)
      throw Refused{"more than " + std::to_string(limits_.max_nodes) +
                    " values after expanding aliases (an alias bomb?)"};
  }

  void open(Node n, YAML::anchor_t anchor) {
    charge(1);
    if (stack_.size() >= limits_.max_depth)
      throw Refused{"nesting deeper than " + std::to_string(limits_.max_depth) + " levels"};
    Open o;
    o.node = std::move(n);
    o.anchor = anchor;
    o.start_count = count_ - 1;
    stack_.push_back(std::move(o));
  }

  void close() {
    Open o = std::move(stack_.back());
    stack_.pop_back();
    finish(std::move(o.node), o.anchor, count_ - o.start_count);
  }

  /// A complete value: remember it if anchored, then put it in its parent.
  void finish(Node n, YAML::anchor_t anchor, std::size_t size) {
    if (anchor) anchors_[anchor] = {n, size};
    place(std::move(n));
  }

  void place(Node n) {
    if (stack_.empty()) {
      if (!root) root = std::make_unique<Node>(std::move(n));
      return;
    }
    Open& parent = stack_.back();
    if (parent.node.kind == Node::Kind::array) {
      parent.node.items.push_back(std::move(n));
    } else if (parent.want_key) {
      // Complex keys (a map as a key) have no use in OpenAPI; they become "".
      parent.key = n.is_scalar() ? std::move(n.text) : std::string();
      parent.key_line = n.line;
      parent.key_col = n.col;
      parent.want_key = false;
    } else {
      // Members point at their key, like the JSON reader's.
      n.line = parent.key_line;
      n.col = parent.key_col;
      parent.node.members.emplace_back(std::move(parent.key), std::move(n));
      parent.want_key = true;
    }
  }

  const TreeLimits& limits_;
  std::vector<Open> stack_;
  std::map<YAML::anchor_t, std::pair<Node, std::size_t>> anchors_;
  static constexpr std::size_t kAliasSlack = 100'000;
  std::size_t count_ = 0, aliased_ = 0;
};

std::unique_ptr<Node> parse_yaml(std::string_view name, std::string_view text, Diagnostics& diags,
                                 const TreeLimits& limits) {
  // yaml-cpp's parser recurses per nesting level: refuse deep documents before it sees them.
  if (auto why = yaml_prescan(text, limits); !why.empty()) {
    diags.error("openapi.too-complex", SourceLoc{name, 1, 1}, "refused: " + why);
    return nullptr;
  }
  YamlEvents events(limits);
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    parser.HandleNextDocument(events);
  } catch (const YAML::Exception& e) {
    diags.error("openapi.syntax",
                SourceLoc{name, static_cast<std::uint32_t>(e.mark.line + 1),
                          static_cast<std::uint32_t>(e.mark.column + 1)},
                e.msg);
    return nullptr;
  } catch (const Refused& r) {
    diags.error("openapi.too-complex", SourceLoc{name, 1, 1}, "refused: " + r.why);
    return nullptr;
  }
  if (!events.root) events.root = std::make_unique<Node>(); // an empty document is null
  return std::move(events.root);
}

} // namespace

std::unique_ptr<Node> parse_tree(std::string_view name, std::string_view text, Diagnostics& diags,
                                 TreeFormat* format, const TreeLimits& limits) {
  std::size_t i = 0;
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
    ++i;
  // A UTF-8 byte order mark is allowed in front of either format.
  if (text.substr(i, 3) == "\xEF\xBB\xBF") i += 3;
  const bool json = i < text.size() && (text[i] == '{' || text[i] == '[');
  if (format) *format = json ? TreeFormat::json : TreeFormat::yaml;
  return json ? parse_json(name, text, diags, limits) : parse_yaml(name, text, diags, limits);
}

} // namespace gw::spec
