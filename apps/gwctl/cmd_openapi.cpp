// gwctl openapi import: OpenAPI/Swagger documents -> an editable TOML spec, with a report of what
// was imported and of everything dropped or approximated (--strict makes those failures).
#include <cstdio>
#include <set>

#include "commands.hpp"
#include "gw/core/file.hpp"
#include "gw/load/load.hpp"
#include "gw/spec/toml_writer.hpp"
#include "output.hpp"

namespace gwctl {
namespace {

bool is_loss(const gw::Diagnostic& d) {
  return d.severity == gw::Severity::warning && d.code.starts_with("openapi.");
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

} // namespace

int run_openapi_import(const Global& g, const OpenApiImportOptions& o) {
  gw::load::Options lo;
  gw::spec::Document doc;
  lo.document = &doc;
  for (const auto& u : o.upstreams) {
    const auto eq = u.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "gwctl: --upstream %s: expected NAME=http://HOST:PORT\n", u.c_str());
      return kUsage;
    }
    lo.openapi.upstreams.emplace_back(u.substr(0, eq), u.substr(eq + 1));
  }
  std::vector<std::string> inputs = o.inputs;
  inputs.insert(inputs.end(), o.with.begin(), o.with.end());
  auto loaded = gw::load::load(inputs, lo);
  std::size_t losses = 0;
  for (const auto& d : loaded.diags)
    losses += is_loss(d) ? 1 : 0;
  if (o.strict) loaded.diags.promote_warnings();

  const Style st = style_for(stderr, g.color);
  // Every input must be an OpenAPI document: TOML belongs to validate/compile, not import.
  const bool io_error = [&] {
    for (const auto& d : loaded.diags)
      if (d.code == "input.unreadable") return true;
    return false;
  }();
  if (!io_error && loaded.imports.size() != o.inputs.size()) {
    std::fprintf(stderr, "%serror%s: %s\n", st.red(), st.reset(),
                 "every DOC must be an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML), and "
                 "every --with file a TOML spec");
    return kFailed;
  }
  print_diagnostics(stderr, loaded.diags, &loaded.sources, st);

  // The report: what came in, what came out.
  std::FILE* report = o.output.empty() ? stderr : stdout;
  for (std::size_t i = 0; i < loaded.imports.size(); ++i) {
    const auto& s = loaded.imports[i];
    std::fprintf(report, "%s: %s%s%s: %s -> %s, %s, %s\n", o.inputs[i].c_str(), s.format.c_str(),
                 s.title.empty() ? "" : ", ", s.title.c_str(),
                 plural(s.operations, "operation", "operations").c_str(),
                 plural(s.routes, "route", "routes").c_str(),
                 plural(s.upstreams, "upstream", "upstreams").c_str(),
                 plural(s.policies, "policy", "policies").c_str());
  }
  if (losses)
    std::fprintf(report, "%s%s%s dropped or approximated (the warnings above)%s\n",
                 o.strict ? st.red() : st.yellow(),
                 plural(losses, "construct", "constructs").c_str(), st.reset(),
                 o.strict ? "; --strict refuses them" : "");

  if (loaded.diags.has_errors() || !loaded.config) {
    std::fprintf(stderr, "%serror%s: %s; nothing written\n", st.red(), st.reset(),
                 summarize(loaded.diags).c_str());
    return io_error ? kIoError : kFailed;
  }

  std::string header = "Imported by `gwctl openapi import` from:\n";
  for (std::size_t i = 0; i < loaded.imports.size(); ++i)
    header += "  " + o.inputs[i] + ": " + loaded.imports[i].format +
              (loaded.imports[i].title.empty() ? "" : ", " + loaded.imports[i].title) + "\n";
  if (losses) {
    header += "\nDropped or approximated:\n";
    for (const auto& d : loaded.diags)
      if (is_loss(d)) header += "  " + d.to_string() + "\n";
  }
  header += "\nComments after each definition name the document and line it came from.\n";
  // Only what the documents define: --with specs stay where they are.
  std::erase_if(doc.routes, [](const auto& r) { return !r.imported; });
  std::erase_if(doc.upstreams, [](const auto& u) { return !u.imported; });
  std::erase_if(doc.policies, [](const auto& p) { return !p.imported; });
  doc.defaults = {};
  const std::string text = gw::spec::write_toml(doc, header);

  if (o.output.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    auto w = gw::file::write_atomic(
        o.output, std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
    if (!w) {
      std::fprintf(stderr, "%serror%s: %s\n", st.red(), st.reset(), w.error().message.c_str());
      return kIoError;
    }
    std::printf("wrote %s (%s, %s, %s)\n", o.output.c_str(),
                plural(doc.routes.size(), "route", "routes").c_str(),
                plural(doc.upstreams.size(), "upstream", "upstreams").c_str(),
                plural(doc.policies.size(), "policy", "policies").c_str());
  }
  return kOk;
}

} // namespace gwctl
