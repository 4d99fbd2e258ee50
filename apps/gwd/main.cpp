// gwd: the gateway daemon. Serves a compiled route table (.gwrt) as an HTTP/1.1 reverse proxy.
#include <CLI/CLI.hpp>

#include "gw/core/units.hpp"
#include "gw/server/daemon.hpp"

namespace {

/// A CLI11 validator/transformer for durations such as "10s".
std::chrono::milliseconds duration_arg(const std::string& flag, const std::string& text) {
  auto d = gw::units::parse_duration(text);
  if (!d || d->count() == 0)
    throw CLI::ValidationError(flag,
                               "\"" + text + "\" is not a positive duration (e.g. 10s, 500ms)");
  return *d;
}

} // namespace

int main(int argc, char** argv) {
  gw::server::DaemonOptions o;
  CLI::App app{"gwd: the gw gateway daemon; serves a compiled route table (.gwrt)", "gwd"};
  app.set_version_flag("--version", std::string("gwd ") + GW_VERSION);
  app.footer("Signals: SIGHUP reloads the current table file (as `gwctl reload` does), SIGTERM\n"
             "and SIGINT drain (stop accepting, let in-flight requests finish for up to\n"
             "--drain-timeout, then exit), SIGUSR1 reopens the access log (log rotation).\n"
             "Once serving, gwd prints one line per --listen to standard output,\n"
             "\"listening ADDRESS:PORT\", with the port actually bound (--listen 127.0.0.1:0\n"
             "takes any free port).\n"
             "Exit codes: 0 stopped cleanly, 1 cannot start (bad table, port taken), 2 usage.");
  std::string header_timeout = "10s", idle_timeout = "60s", drain_timeout = "30s",
              upstream_idle = "30s";
  // --table and --listen are checked after parsing rather than marked required: CLI11 reports a
  // missing required option before an unknown one, and `gwd --bogus` should name --bogus.
  app.add_option("--table", o.table, "Compiled route table (gwctl compile); required")
      ->type_name("PATH");
  app.add_option("--listen", o.listen,
                 "Address to serve, HOST:PORT (repeatable; port 0: any free port); required")
      ->type_name("ADDR");
  app.add_option("--workers", o.workers, "Worker threads, 1 to 256 (default: one per core)")
      ->type_name("N")
      ->check(CLI::Range(1, 256).description(""));
  app.add_option("--access-log", o.access_log, "Access log: a path, or - for standard output")
      ->type_name("PATH");
  app.add_option("--control", o.control,
                 std::string("Control socket (default: ") + gw::server::kDefaultControlSocket + ")")
      ->type_name("PATH");
  app.add_option("--control-group", o.control_group,
                 "Group allowed to use the control socket (mode 0660)")
      ->type_name("GROUP");
  app.add_option("--trusted-proxy", o.trusted_proxies,
                 "CIDR whose X-Forwarded-* and Forwarded headers are kept (repeatable)")
      ->type_name("CIDR");
  // Defaults in the text rather than CLI11's "TEXT=10s", which reads as syntax.
  app.add_option("--header-timeout", header_timeout,
                 "Time a client has to send a request head (default " + header_timeout + ")")
      ->type_name("DURATION");
  app.add_option("--idle-timeout", idle_timeout,
                 "Keep-alive wait for a client's next request (default " + idle_timeout + ")")
      ->type_name("DURATION");
  app.add_option("--drain-timeout", drain_timeout,
                 "How long in-flight requests may finish on SIGTERM (default " + drain_timeout +
                     ")")
      ->type_name("DURATION");
  app.add_option("--upstream-idle-timeout", upstream_idle,
                 "How long pooled upstream connections are kept (default " + upstream_idle + ")")
      ->type_name("DURATION");
  try {
    app.parse(argc, argv);
    if (o.table.empty()) throw CLI::RequiredError("--table");
    if (o.listen.empty()) throw CLI::RequiredError("--listen");
    o.header_timeout = duration_arg("--header-timeout", header_timeout);
    o.idle_timeout = duration_arg("--idle-timeout", idle_timeout);
    o.drain_timeout = duration_arg("--drain-timeout", drain_timeout);
    o.upstream_idle_timeout = duration_arg("--upstream-idle-timeout", upstream_idle);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    return gw::server::run_daemon(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gwd: fatal: %s\n", e.what());
    return 1;
  }
}
