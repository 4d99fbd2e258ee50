// gwctl openapi import: OpenAPI/Swagger documents -> an editable TOML spec, with a report of what
// was imported and of everything dropped or approximated (--strict makes those failures).
#include <algorithm>
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
  const bool io_error = [&] {
    for (const auto& d : loaded.diags)
      if (d.code == "input.unreadable") return true;
    return false;
  }();
  // Problems reading an input (unreadable, too large, not parseable) come first: they explain
  // why it was not imported better than the check below.
  print_diagnostics(stderr, loaded.diags, &loaded.sources, st);
  auto import_of = [&](const std::string& path) -> const gw::spec::ImportSummary* {
    for (const auto& s : loaded.imports)
      if (s.source == path) return &s;
    return nullptr;
  };
  auto has_errors = [&](const std::string& path) {
    return std::any_of(loaded.diags.begin(), loaded.diags.end(), [&](const gw::Diagnostic& d) {
      return d.file == path && d.severity == gw::Severity::error;
    });
  };
  // Every DOC must be an OpenAPI document: TOML belongs to validate/compile, not import.
  bool misplaced = false;
  for (const auto& in : o.inputs)
    if (!import_of(in) && !has_errors(in)) {
      std::fprintf(stderr,
                   "%serror%s: %s: not an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML); "
                   "TOML specs go in --with\n",
                   st.red(), st.reset(), in.c_str());
      misplaced = true;
    }
  for (const auto& w : o.with)
    if (import_of(w)) {
      std::fprintf(stderr, "%serror%s: --with %s: an OpenAPI document; --with takes TOML specs\n",
                   st.red(), st.reset(), w.c_str());
      misplaced = true;
    }
  if (misplaced) return kFailed;

  // The report: what came in, what came out.
  std::FILE* report = o.output.empty() ? stderr : stdout;
  for (const auto& s : loaded.imports) {
    std::fprintf(report, "%s: %s%s%s: %s -> %s, %s, %s\n", s.source.c_str(), s.format.c_str(),
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
  for (const auto& s : loaded.imports)
    header += "  " + s.source + ": " + s.format + (s.title.empty() ? "" : ", " + s.title) + "\n";
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
