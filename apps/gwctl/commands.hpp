// gwctl's subcommands: one options struct and one run function each. main.cpp builds the
// command tree (CLI11) from these; the run functions never see CLI11.
#pragma once

#include <string>
#include <vector>

namespace gw::model {
struct Config;
}

namespace gwctl {

/// Process exit codes, documented in `gwctl --help` and the README.
enum Exit : int {
  kOk = 0,
  kFailed = 1,      // invalid input, failed test cases, no route, differences found
  kUsage = 2,       // bad command line
  kUnreachable = 3, // no gwd answers on the control socket
  kRefused = 4,     // gwd refused the command (bad table, permission, busy)
  kIoError = 5,     // cannot read or write a file
};

enum class Format { text, json, sarif };

/// "12 routes, 1 upstream, 0 policies".
std::string counts(const gw::model::Config& c);
enum class Color { automatic, always, never };

struct Global {
  Color color = Color::automatic;
  std::string socket; // control socket: --socket, $GW_SOCKET, or /run/gw/gwd.sock
};

struct ValidateOptions {
  std::vector<std::string> inputs;
  Format format = Format::text;
  bool werror = false;
  bool quiet = false; // only the summary line
};
int run_validate(const Global& g, const ValidateOptions& o);

struct CompileOptions {
  std::vector<std::string> inputs;
  std::string output;
  std::string label;
  long long timestamp = -1; // -1: $SOURCE_DATE_EPOCH or none
  bool werror = false;
};
int run_compile(const Global& g, const CompileOptions& o);

struct InspectOptions {
  std::string input;
  bool json = false;
};
int run_inspect(const Global& g, const InspectOptions& o);

struct ExplainOptions {
  bool live = false;                   // ask the running gwd instead of a file
  std::vector<std::string> positional; // [INPUT] METHOD URL
  std::string input;
  std::vector<std::string> with; // more spec files merged with `input`
  std::string method;
  std::string url;
  std::vector<std::string> headers; // "Name: value"
  bool json = false;
};
int run_explain(const Global& g, const ExplainOptions& o);

struct TestOptions {
  std::string input;
  std::vector<std::string> with;
  std::string cases;
  bool json = false;
  bool only_failures = false;
  double fail_under = 0; // minimum route coverage, percent
};
int run_test(const Global& g, const TestOptions& o);

struct DiffOptions {
  std::string old_input;
  std::string new_input;
  std::vector<std::string> with; // spec files merged into both sides
  bool json = false;
  bool exit_code = false; // exit 1 when there are differences (like git diff --exit-code)
};
int run_diff(const Global& g, const DiffOptions& o);

struct OpenApiImportOptions {
  std::vector<std::string> inputs;    // OpenAPI/Swagger documents
  std::vector<std::string> upstreams; // NAME=http://HOST:PORT
  std::vector<std::string> with;      // TOML specs the import uses but does not copy
  std::string output;                 // "" = stdout
  bool strict = false;                // dropped or approximated constructs are errors
};
int run_openapi_import(const Global& g, const OpenApiImportOptions& o);

struct KeyOptions {
  std::string consumer;
  unsigned bytes = 32;
  std::string append; // keys file to append the line to
  bool json = false;
};
int run_key_new(const Global& g, const KeyOptions& o);
int run_key_hash(const Global& g, const KeyOptions& o); // the key on stdin

struct JwtSignOptions {
  std::string alg;         // "": the key's own algorithm (RS256, ES256, ES384, EdDSA; HS256)
  std::string key;         // private key, PEM
  std::string secret_file; // HMAC secret
  std::string secret_env;
  std::string claims; // JSON object
  std::string subject, issuer, audience, kid;
  std::string expires_in; // sets exp; without it (and no exp in claims) gwctl warns
  bool no_exp = false;    // no exp, on purpose: no warning
};
int run_jwt_sign(const Global& g, const JwtSignOptions& o);

// Commands that talk to a running gwd over its control socket.
struct StartOptions {
  std::vector<std::string> inputs; // specs or one table
  std::vector<std::string> listen;
  unsigned workers = 0;
  std::string access_log;
  std::vector<std::string> trusted_proxies;
  std::string control_group;
  std::string gwd; // the gwd binary (default: next to gwctl, then $PATH)
  double wait_s = 10;
};
int run_start(const Global& g, const StartOptions& o);

struct StopOptions {
  std::string timeout = "30s";
  bool now = false;
};
int run_stop(const Global& g, const StopOptions& o);

struct ReloadOptions {
  std::vector<std::string> inputs; // none: the current table file; specs or one table
  bool dry_run = false;
  bool json = false;
};
int run_reload(const Global& g, const ReloadOptions& o);

struct ViewOptions {
  bool json = false;
};
int run_status(const Global& g, const ViewOptions& o);
int run_routes(const Global& g, const ViewOptions& o);
int run_upstreams(const Global& g, const ViewOptions& o);
int run_stats(const Global& g, const ViewOptions& o);
int run_rollback(const Global& g, const ViewOptions& o);

struct EndpointOptions {
  std::string upstream, address, state;
  bool json = false;
};
int run_endpoint_set(const Global& g, const EndpointOptions& o);

} // namespace gwctl
