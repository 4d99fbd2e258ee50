// gwctl's subcommands: one options struct and one run function each. main.cpp builds the
// command tree (CLI11) from these; the run functions never see CLI11.
#pragma once

#include <string>
#include <vector>

namespace gwctl {

/// Process exit codes, documented in `gwctl --help` and the README.
enum Exit : int {
  kOk = 0,
  kFailed = 1,  // invalid input, failed test cases, no route, differences found
  kUsage = 2,   // bad command line
  kIoError = 5, // cannot read or write a file
};

enum class Format { text, json, sarif };

} // namespace gwctl
namespace gw::model {
struct Config;
}
namespace gwctl {

/// "12 routes, 1 upstream, 0 policies".
std::string counts(const gw::model::Config& c);
enum class Color { automatic, always, never };

struct Global {
  Color color = Color::automatic;
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
  bool json = false;
  bool exit_code = false; // exit 1 when there are differences (like git diff --exit-code)
};
int run_diff(const Global& g, const DiffOptions& o);

} // namespace gwctl
