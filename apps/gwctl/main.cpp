// gwctl: validate, compile, inspect, explain, test and diff gw route tables.
// The command tree is built here, in one place, so help and (later) completions come from it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <map>

#include "commands.hpp"

namespace {

constexpr const char* kFooter = R"(Exit codes:
  0  ok
  1  invalid input, failed test cases, no route matched (explain), differences (diff --exit-code)
  2  usage error
  5  a file could not be read or written

Run `gwctl COMMAND --help` for a command's options.)";

} // namespace

int main(int argc, char** argv) {
  using namespace gwctl;
  CLI::App app{"gwctl: validate, compile, inspect and test gw route tables", "gwctl"};
  app.set_version_flag("--version", std::string("gwctl ") + GW_VERSION);
  app.require_subcommand(1);
  app.fallthrough(); // global options (--color) may follow the subcommand
  app.footer(kFooter);

  Global g;
  const std::map<std::string, Color> colors{
      {"auto", Color::automatic}, {"always", Color::always}, {"never", Color::never}};
  app.add_option("--color", g.color, "Colour output: auto, always or never")
      ->transform(CLI::CheckedTransformer(colors, CLI::ignore_case))
      ->default_str("auto");

  // validate
  ValidateOptions vo;
  auto* validate =
      app.add_subcommand("validate", "Check specs (or a table) and report every problem");
  validate->add_option("SPEC", vo.inputs, "TOML spec files, merged in order, or one .gwrt table")
      ->required();
  const std::map<std::string, Format> formats{
      {"text", Format::text}, {"json", Format::json}, {"sarif", Format::sarif}};
  validate->add_option("--format", vo.format, "Output: text, json or sarif (for CI annotations)")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case))
      ->default_str("text");
  validate->add_flag("--werror", vo.werror, "Treat warnings as errors");
  validate->add_flag("-q,--quiet", vo.quiet, "Print only the summary line");

  // compile
  CompileOptions co;
  auto* compile = app.add_subcommand("compile", "Compile specs into a binary route table (.gwrt)");
  compile->add_option("SPEC", co.inputs, "TOML spec files, merged in order")->required();
  compile->add_option("-o,--output", co.output, "Table to write (atomically)")->required();
  compile->add_option("--label", co.label, "A label recorded in the table");
  compile->add_option("--timestamp", co.timestamp,
                      "Seconds since the epoch to record (default: $SOURCE_DATE_EPOCH, else none)");
  compile->add_flag("--werror", co.werror, "Treat warnings as errors");

  // inspect
  InspectOptions io;
  auto* inspect = app.add_subcommand(
      "inspect", "Show a table: header, digest, routes in precedence order, upstreams");
  inspect->add_option("TABLE", io.input, "A .gwrt table (or a spec, shown as it would compile)")
      ->required();
  inspect->add_flag("--json", io.json, "JSON output");

  // explain
  ExplainOptions eo;
  auto* explain =
      app.add_subcommand("explain", "Show which route a request takes, and why others do not");
  explain->add_option("INPUT", eo.input, "A spec or a .gwrt table")->required();
  explain->add_option("METHOD", eo.method, "Request method, e.g. GET")->required();
  explain->add_option("URL", eo.url, "http://host/path?query, or /path?query")->required();
  explain->add_option("-H,--header", eo.headers, "A request header, \"Name: value\" (repeatable)");
  explain->add_option("--with", eo.with, "More spec files merged with INPUT");
  explain->add_flag("--json", eo.json, "JSON output");

  // test
  TestOptions to;
  auto* test = app.add_subcommand("test", "Run route test cases and report route coverage");
  test->add_option("INPUT", to.input, "A spec or a .gwrt table")->required();
  test->add_option("CASES", to.cases, "A TOML file of [[case]] entries")->required();
  test->add_option("--with", to.with, "More spec files merged with INPUT");
  test->add_flag("--json", to.json, "JSON output");
  test->add_flag("--only-failures", to.only_failures, "List failing cases only");
  test->add_option("--fail-under", to.fail_under,
                   "Fail when route coverage is below this percentage")
      ->check(CLI::Range(0.0, 100.0));

  // diff
  DiffOptions dopt;
  auto* diff = app.add_subcommand("diff", "Semantic diff of two specs or tables");
  diff->add_option("OLD", dopt.old_input, "The old spec or table")->required();
  diff->add_option("NEW", dopt.new_input, "The new spec or table")->required();
  diff->add_flag("--json", dopt.json, "JSON output");
  diff->add_flag("--exit-code", dopt.exit_code, "Exit with 1 when there are differences");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }

  try {
    if (validate->parsed()) return run_validate(g, vo);
    if (compile->parsed()) return run_compile(g, co);
    if (inspect->parsed()) return run_inspect(g, io);
    if (explain->parsed()) return run_explain(g, eo);
    if (test->parsed()) return run_test(g, to);
    if (diff->parsed()) return run_diff(g, dopt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gwctl: internal error: %s\n", e.what());
    return kFailed;
  }
  return kUsage;
}
