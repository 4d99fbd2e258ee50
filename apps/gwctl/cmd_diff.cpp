// gwctl diff: what changes between two specs or tables, by meaning rather than by bytes.
#include "commands.hpp"
#include "gw/check/diff.hpp"
#include "gw/load/load.hpp"
#include "output.hpp"

namespace gwctl {

using namespace gw;

int run_diff(const Global& g, const DiffOptions& o) {
  const Style est = style_for(stderr, g.color);
  // --with files (shared upstreams or policies) are merged into both sides.
  auto inputs = [&](const std::string& first) {
    std::vector<std::string> v{first};
    v.insert(v.end(), o.with.begin(), o.with.end());
    return v;
  };
  auto a = load::load(inputs(o.old_input));
  auto b = load::load(inputs(o.new_input));
  if (!a.ok() || !b.ok()) {
    print_diagnostics(stderr, a.diags, &a.sources, est);
    print_diagnostics(stderr, b.diags, &b.sources, est);
    return kFailed;
  }
  const auto changes = check::diff(*a.routes, *b.routes);
  const int rc = (changes.empty() || !o.exit_code) ? kOk : kFailed;
  if (o.json) {
    auto arr = nlohmann::json::array();
    for (const auto& c : changes) {
      arr.push_back({{"kind", check::to_string(c.kind)},
                     {"object", c.object},
                     {"name", c.name},
                     {"details", c.details}});
      if (!c.other.empty()) arr.back()["other"] = c.other;
      if (!c.example.empty()) arr.back()["example"] = c.example;
    }
    print_json({{"old", o.old_input}, {"new", o.new_input}, {"changes", arr}});
    return rc;
  }
  const Style st = style_for(stdout, g.color);
  if (changes.empty()) {
    std::printf("no differences\n");
    return rc;
  }
  for (const auto& c : changes) {
    const char* mark = "~";
    const char* color = st.yellow();
    switch (c.kind) {
    case check::Change::Kind::added:
      mark = "+";
      color = st.green();
      break;
    case check::Change::Kind::removed:
      mark = "-";
      color = st.red();
      break;
    case check::Change::Kind::precedence:
      mark = "^";
      color = st.cyan();
      break;
    default:
      break;
    }
    std::printf("%s%s %s %s%s %s\n", color, mark, c.object.c_str(), c.name.c_str(), st.reset(),
                c.kind == check::Change::Kind::changed
                    ? ""
                    : std::string(check::to_string(c.kind)).c_str());
    for (const auto& d : c.details)
      std::printf("    %s\n", d.c_str());
  }
  return rc;
}

} // namespace gwctl
