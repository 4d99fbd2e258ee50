#include "help.hpp"

#include <CLI/CLI.hpp>

namespace gwctl {
namespace {

bool takes_many(const CLI::Option* o) {
  return o->get_expected_max() >= CLI::detail::expected_max_vector_size;
}

class Help final : public CLI::Formatter {
public:
  /// What follows an option's names in the list: its value's name and how often it may be given.
  std::string make_option_opts(const CLI::Option* o) const override {
    if (!o->get_option_text().empty()) return " " + o->get_option_text();
    if (o->get_type_size() == 0) return ""; // a flag
    if (!o->nonpositional()) return takes_many(o) ? " ..." : "";
    std::string s = " " + o->get_type_name();
    if (takes_many(o)) s += " (repeatable)";
    if (o->get_required()) s += " (required)";
    return s;
  }

  /// A positional in the usage line: its name, "..." when it takes several, [] when optional.
  std::string make_option_usage(const CLI::Option* o) const override {
    std::string s = o->get_name();
    if (takes_many(o)) s += "...";
    return o->get_required() ? s : "[" + s + "]";
  }
};

} // namespace

std::shared_ptr<CLI::Formatter> help_formatter() {
  return std::make_shared<Help>();
}

} // namespace gwctl
