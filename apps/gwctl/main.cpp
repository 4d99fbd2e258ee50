// gwctl: validate, compile, inspect, explain, test and diff gw route tables.
// The command tree is built here, in one place, so help and (later) completions come from it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <map>

#include "commands.hpp"
#include "completion.hpp"
#include "gw/control/protocol.hpp"
#include "gw/policy/jwt.hpp"
#include "help.hpp"

namespace {

constexpr const char* kFooter = R"(Exit codes:
  0  ok
  1  invalid input, failed test cases, no route matched (explain), differences (diff --exit-code)
  2  usage error
  3  no gwd answers on the control socket
  4  gwd refused the command (rejected table, permission, busy)
  5  a file could not be read or written

Run `gwctl COMMAND --help` for a command's options.)";

/// An option that may be given several times, one value each time (`-H A -H B`): it never takes
/// the words after its value, which are positionals.
CLI::Option* repeatable(CLI::Option* o) {
  return o->allow_extra_args(false);
}

/// "HS256|HS384|...": the choices of an option, as its help shows them.
std::string choices(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names)
    s += (s.empty() ? "" : "|") + n;
  return s;
}

} // namespace

int main(int argc, char** argv) {
  using namespace gwctl;
  CLI::App app{"gwctl: validate, compile, inspect and test gw route tables", "gwctl"};
  app.formatter(help_formatter()); // before any subcommand: they copy it
  app.set_version_flag("--version", std::string("gwctl ") + GW_VERSION);
  app.require_subcommand(1);
  app.fallthrough(); // global options (--color) may follow the subcommand
  app.footer(kFooter);

  Global g;
  const std::map<std::string, Color> colors{
      {"auto", Color::automatic}, {"always", Color::always}, {"never", Color::never}};
  app.add_option("--color", g.color, "Colour output (default: auto, colour on a terminal)")
      ->transform(CLI::CheckedTransformer(colors, CLI::ignore_case).description(""))
      ->type_name("auto|always|never");
  g.socket = gw::control::default_socket_path();
  app.add_option("--socket", g.socket,
                 "gwd's control socket (default: $GW_SOCKET or /run/gw/gwd.sock)")
      ->type_name("PATH");

  // validate
  ValidateOptions vo;
  auto* validate =
      app.add_subcommand("validate", "Check specs (or a table) and report every problem");
  validate
      ->add_option("SPEC", vo.inputs,
                   "TOML specs or OpenAPI documents, merged in order, or one .gwrt table")
      ->required();
  const std::map<std::string, Format> formats{
      {"text", Format::text}, {"json", Format::json}, {"sarif", Format::sarif}};
  validate->add_option("--format", vo.format, "Output (default: text; sarif for CI annotations)")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case).description(""))
      ->type_name("text|json|sarif");
  validate->add_flag("--werror", vo.werror, "Treat warnings as errors");
  validate->add_flag("-q,--quiet", vo.quiet, "Print only the summary line");

  // compile
  CompileOptions co;
  auto* compile = app.add_subcommand("compile", "Compile specs into a binary route table (.gwrt)");
  compile->add_option("SPEC", co.inputs, "TOML specs or OpenAPI documents, merged in order")
      ->required();
  compile->add_option("-o,--output", co.output, "Table to write (atomically)")
      ->required()
      ->type_name("TABLE");
  compile->add_option("--label", co.label, "A label recorded in the table")->type_name("LABEL");
  compile
      ->add_option("--timestamp", co.timestamp,
                   "Seconds since the epoch to record (default: $SOURCE_DATE_EPOCH, else none)")
      ->type_name("SECONDS");
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
  explain
      ->add_option(
          "INPUT METHOD URL", eo.positional,
          "A spec or .gwrt table (left out with --live), a method, and http://host/path?query "
          "or /path")
      ->expected(2, 3)
      ->required();
  explain->add_flag("--live", eo.live, "Ask the running gwd (its current table)");
  repeatable(explain->add_option("-H,--header", eo.headers, "A request header"))
      ->type_name("'NAME: VALUE'");
  repeatable(explain->add_option("--with", eo.with, "More spec files merged with INPUT"))
      ->type_name("SPEC");
  explain->add_flag("--json", eo.json, "JSON output");

  // test
  TestOptions to;
  auto* test = app.add_subcommand("test", "Run route test cases and report route coverage");
  test->add_option("INPUT", to.input, "A spec or a .gwrt table")->required();
  test->add_option("CASES", to.cases, "A TOML file of [[case]] entries")->required();
  repeatable(test->add_option("--with", to.with, "More spec files merged with INPUT"))
      ->type_name("SPEC");
  test->add_flag("--json", to.json, "JSON output");
  test->add_flag("--only-failures", to.only_failures, "List failing cases only");
  test->add_option("--fail-under", to.fail_under,
                   "Fail when route coverage is below this percentage (0-100)")
      ->check(CLI::Range(0.0, 100.0).description(""))
      ->type_name("PERCENT");

  // diff
  DiffOptions dopt;
  auto* diff = app.add_subcommand("diff", "Semantic diff of two specs or tables");
  diff->add_option("OLD", dopt.old_input, "The old spec or table")->required();
  diff->add_option("NEW", dopt.new_input, "The new spec or table")->required();
  repeatable(diff->add_option("--with", dopt.with, "More spec files merged into both sides"))
      ->type_name("SPEC");
  diff->add_flag("--json", dopt.json, "JSON output");
  diff->add_flag("--exit-code", dopt.exit_code, "Exit with 1 when there are differences");

  // key new|hash, jwt sign: credentials for the policies
  KeyOptions ko;
  auto* key = app.add_subcommand("key", "Make API keys and the lines of a keys file");
  key->require_subcommand(1);
  auto* key_new = key->add_subcommand("new", "Print a new random API key for a consumer");
  auto* key_hash =
      key->add_subcommand("hash", "Print the keys-file line for a key read from standard input");
  for (auto* c : {key_new, key_hash}) {
    c->add_option("CONSUMER", ko.consumer, "Consumer name the key identifies")->required();
    c->add_option("--append", ko.append, "Append the line to this keys file")->type_name("FILE");
  }
  key_new->add_option("--bytes", ko.bytes, "Random bytes in the key (16-64, default 32)")
      ->type_name("N");
  key_new->add_flag("--json", ko.json, "JSON output: consumer, key and line");

  JwtSignOptions jso;
  auto* jwt = app.add_subcommand("jwt", "Work with JSON Web Tokens");
  jwt->require_subcommand(1);
  auto* jwt_sign = jwt->add_subcommand("sign", "Sign a token (for tests and service accounts)");
  jwt_sign
      ->add_option("--alg", jso.alg,
                   "Algorithm (default: the key's own: RS256 for RSA, ES256 for EC P-256, ES384 "
                   "for P-384, EdDSA for Ed25519; HS256 for a secret)")
      ->check(CLI::IsMember(gw::policy::jwt::alg_names()).description(""))
      ->type_name(choices(gw::policy::jwt::alg_names()));
  jwt_sign->add_option("--key", jso.key, "Private key, PEM (RS*, PS*, ES*, EdDSA)")
      ->type_name("PEM");
  jwt_sign->add_option("--secret-file", jso.secret_file, "HMAC secret file (HS*)")
      ->type_name("FILE");
  jwt_sign->add_option("--secret-env", jso.secret_env, "Environment variable with the HMAC secret")
      ->type_name("VAR");
  jwt_sign->add_option("--claims", jso.claims, "Claims, a JSON object")->type_name("JSON");
  jwt_sign->add_option("--sub", jso.subject, "Subject (sub)")->type_name("SUBJECT");
  jwt_sign->add_option("--iss", jso.issuer, "Issuer (iss)")->type_name("ISSUER");
  jwt_sign->add_option("--aud", jso.audience, "Audience (aud)")->type_name("AUDIENCE");
  jwt_sign->add_option("--kid", jso.kid, "Key id in the header")->type_name("KID");
  auto* expires_in =
      jwt_sign
          ->add_option("--expires-in", jso.expires_in,
                       "Lifetime, sets exp (without it gwctl warns: gwd refuses tokens without "
                       "exp unless the policy sets require_exp = false)")
          ->type_name("DURATION");
  jwt_sign->add_flag("--no-exp", jso.no_exp, "Mint a token without exp, on purpose (no warning)")
      ->excludes(expires_in);

  // openapi import
  OpenApiImportOptions oio;
  auto* openapi = app.add_subcommand("openapi", "Work with OpenAPI documents");
  openapi->require_subcommand(1);
  auto* openapi_import = openapi->add_subcommand(
      "import", "Turn OpenAPI 3.x / Swagger 2.0 documents into an editable TOML spec");
  openapi_import->add_option("DOC", oio.inputs, "OpenAPI documents (JSON or YAML), merged in order")
      ->required();
  repeatable(openapi_import->add_option("--upstream", oio.upstreams, "Where upstream NAME lives"))
      ->type_name("NAME=http://HOST:PORT");
  repeatable(openapi_import->add_option(
                 "--with", oio.with,
                 "A TOML spec whose upstreams and policies the document uses (not copied)"))
      ->type_name("SPEC");
  openapi_import->add_option("-o,--output", oio.output, "TOML spec to write (default: stdout)")
      ->type_name("FILE");
  openapi_import->add_flag("--strict", oio.strict, "Fail when anything is dropped or approximated");

  // Driving a running gwd (control socket).
  StartOptions so;
  auto* start = app.add_subcommand(
      "start", "Start gwd in the background on a spec or table; wait until it serves");
  start
      ->add_option("INPUT", so.inputs,
                   "TOML specs (compiled next to the socket) or one .gwrt table")
      ->required();
  repeatable(start->add_option("--listen", so.listen, "Address to serve (default 127.0.0.1:8080)"))
      ->type_name("HOST:PORT");
  start->add_option("--workers", so.workers, "Worker threads (default: one per core)")
      ->type_name("N");
  start->add_option("--access-log", so.access_log, "Access log file, or - for stdout")
      ->type_name("PATH");
  repeatable(start->add_option("--trusted-proxy", so.trusted_proxies,
                               "A proxy whose forwarding headers are kept"))
      ->type_name("CIDR");
  start->add_option("--control-group", so.control_group, "Group allowed to use the control socket")
      ->type_name("GROUP");
  start->add_option("--gwd", so.gwd, "The gwd binary (default: next to gwctl, then $PATH)")
      ->type_name("PATH");
  start->add_option("--wait", so.wait_s, "Seconds to wait for gwd to serve (default 10)")
      ->type_name("SECONDS");

  StopOptions sto;
  auto* stop = app.add_subcommand(
      "stop", "Stop gwd gracefully: stop accepting, finish in-flight requests, exit");
  stop->add_option("--timeout", sto.timeout, "How long in-flight requests may take (default 30s)")
      ->type_name("DURATION");
  stop->add_flag("--now", sto.now, "Stop immediately, cutting in-flight requests");

  ReloadOptions ro;
  auto* reload =
      app.add_subcommand("reload", "Serve a new table; answers once every worker serves it");
  reload->add_option("INPUT", ro.inputs,
                     "Specs or a .gwrt table (default: gwd's current table file, re-read)");
  reload->add_flag("--dry-run", ro.dry_run, "Check the table with gwd without serving it");
  reload->add_flag("--json", ro.json, "JSON output");

  ViewOptions rbo, sto2, rto, uto, stao;
  auto* rollback = app.add_subcommand("rollback", "Serve the previous table generation again");
  rollback->add_flag("--json", rbo.json, "JSON output");
  auto* status = app.add_subcommand(
      "status", "The running gwd: pid, listeners, table, generation, last reload");
  status->add_flag("--json", sto2.json, "JSON output");
  auto* routes = app.add_subcommand("routes", "Routes of the running table, in precedence order");
  routes->add_flag("--json", rto.json, "JSON output");
  auto* upstreams = app.add_subcommand(
      "upstreams", "Upstreams and endpoints: state, in flight, pooled, counters");
  upstreams->add_flag("--json", uto.json, "JSON output");
  auto* stats = app.add_subcommand("stats", "Counters and latency per route and upstream");
  stats->add_flag("--json", stao.json, "JSON output");

  EndpointOptions epo;
  auto* endpoint = app.add_subcommand("endpoint", "Change an endpoint's state on the running gwd");
  endpoint->require_subcommand(1);
  auto* endpoint_set =
      endpoint->add_subcommand("set", "Set an endpoint ready, drain or maint (survives reloads)");
  endpoint_set->add_option("UPSTREAM", epo.upstream, "Upstream name")->required();
  endpoint_set->add_option("ADDRESS", epo.address, "Endpoint address, host:port as in the spec")
      ->required();
  endpoint_set
      ->add_option("STATE", epo.state,
                   "ready, drain (no new requests) or maint (and close pooled connections)")
      ->required()
      ->check(CLI::IsMember({"ready", "drain", "maint"}).description(""));
  endpoint_set->add_flag("--json", epo.json, "JSON output");

  std::string shell;
  auto* completion =
      app.add_subcommand("completion", "Print the shell completion script (bash, zsh or fish)");
  completion->add_option("SHELL", shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}).description(""));

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
    if (openapi_import->parsed()) return run_openapi_import(g, oio);
    if (key_new->parsed()) return run_key_new(g, ko);
    if (key_hash->parsed()) return run_key_hash(g, ko);
    if (jwt_sign->parsed()) return run_jwt_sign(g, jso);
    if (start->parsed()) return run_start(g, so);
    if (stop->parsed()) return run_stop(g, sto);
    if (reload->parsed()) return run_reload(g, ro);
    if (rollback->parsed()) return run_rollback(g, rbo);
    if (status->parsed()) return run_status(g, sto2);
    if (routes->parsed()) return run_routes(g, rto);
    if (upstreams->parsed()) return run_upstreams(g, uto);
    if (stats->parsed()) return run_stats(g, stao);
    if (endpoint_set->parsed()) return run_endpoint_set(g, epo);
    if (completion->parsed()) {
      std::fputs(completion_script(app, shell).c_str(), stdout);
      return kOk;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gwctl: internal error: %s\n", e.what());
    return kFailed;
  }
  return kUsage;
}
