// gwctl validate: every problem in one or more specs (or a table), compiler-style or for CI.
#include "commands.hpp"
#include "gw/load/load.hpp"
#include "output.hpp"

namespace gwctl {

std::string counts(const gw::model::Config& c) {
  return plural(c.routes.size(), "route", "routes") + ", " +
         plural(c.upstreams.size(), "upstream", "upstreams") + ", " +
         plural(c.policies.size(), "policy", "policies");
}

namespace {
bool unreadable(const gw::Diagnostics& d) {
  for (const auto& x : d)
    if (x.code == "input.unreadable") return true;
  return false;
}
} // namespace

int run_validate(const Global& g, const ValidateOptions& o) {
  auto loaded = gw::load::load(o.inputs);
  if (o.werror) loaded.diags.promote_warnings();
  const bool ok = !loaded.diags.has_errors() && loaded.config;

  switch (o.format) {
  case Format::json: {
    auto j = diagnostics_json(loaded.diags);
    j["ok"] = ok;
    j["inputs"] = o.inputs;
    if (ok) {
      j["routes"] = loaded.config->routes.size();
      j["upstreams"] = loaded.config->upstreams.size();
      j["policies"] = loaded.config->policies.size();
    }
    print_json(j);
    break;
  }
  case Format::sarif:
    print_json(diagnostics_sarif(loaded.diags));
    break;
  case Format::text: {
    const Style st = style_for(stdout, g.color);
    if (!o.quiet) print_diagnostics(stdout, loaded.diags, &loaded.sources, st);
    if (ok) {
      std::printf("%sok%s: %s", st.green(), st.reset(), counts(*loaded.config).c_str());
      if (loaded.diags.warning_count()) std::printf(" (%s)", summarize(loaded.diags).c_str());
      std::printf("\n");
    } else {
      std::printf("%sinvalid%s: %s\n", st.red(), st.reset(), summarize(loaded.diags).c_str());
    }
    break;
  }
  }
  if (ok) return kOk;
  return unreadable(loaded.diags) ? kIoError : kFailed;
}

} // namespace gwctl
