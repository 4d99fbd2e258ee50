#include "daemon_client.hpp"

#include "gw/core/diagnostics.hpp"
#include "output.hpp"

namespace gwctl {

void print_daemon_error(const Global& g, const nlohmann::json& err) {
  const Style st = style_for(stderr, g.color);
  std::fprintf(stderr, "%serror%s: gwd refused: %s [%s]\n", st.red(), st.reset(),
               err.value("message", std::string("?")).c_str(),
               err.value("code", std::string("?")).c_str());
  gw::Diagnostics diags;
  for (const auto& d : err.value("diagnostics", nlohmann::json::array())) {
    auto& x = diags.add(d.value("severity", "error") == "warning" ? gw::Severity::warning
                                                                  : gw::Severity::error,
                        d.value("code", ""), gw::SourceLoc{}, d.value("message", ""));
    x.file = d.value("file", "");
    x.line = d.value("line", 0u);
    x.col = d.value("column", 0u);
    x.hint = d.value("hint", "");
  }
  if (!diags.empty()) print_diagnostics(stderr, diags, nullptr, st);
}

CallResult call_daemon(const Global& g, const std::string& cmd, const nlohmann::json& args,
                       std::chrono::milliseconds timeout) {
  CallResult out;
  const Style st = style_for(stderr, g.color);
  auto client = gw::control::Client::connect(g.socket);
  if (!client) {
    std::fprintf(stderr, "%serror%s: %s\n", st.red(), st.reset(), client.error().message.c_str());
    out.exit_code = kUnreachable;
    return out;
  }
  auto resp = client->call(cmd, args, timeout);
  if (!resp) {
    std::fprintf(stderr, "%serror%s: %s\n", st.red(), st.reset(), resp.error().message.c_str());
    out.exit_code = kUnreachable;
    return out;
  }
  if (!(*resp)["ok"].get<bool>()) {
    out.error = (*resp)["error"];
    print_daemon_error(g, out.error);
    out.exit_code = kRefused;
    return out;
  }
  out.result = (*resp)["result"];
  return out;
}

std::string human_seconds(long long s) {
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  if (s < 86400) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  return std::to_string(s / 86400) + "d" + std::to_string(s % 86400 / 3600) + "h";
}

} // namespace gwctl
