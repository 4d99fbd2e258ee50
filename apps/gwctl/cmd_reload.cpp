// gwctl reload: a new table for the running gwd, answered only once every worker serves it.
#include <filesystem>

#include "commands.hpp"
#include "daemon_client.hpp"
#include "gw/core/sha256.hpp"
#include "gw/load/load.hpp"
#include "gw/table/codec.hpp"
#include "output.hpp"

namespace gwctl {

using Json = nlohmann::json;
namespace fs = std::filesystem;

int run_reload(const Global& g, const ReloadOptions& o) {
  const Style est = style_for(stderr, g.color);
  Json args = Json::object();
  std::string staged;  // a compiled spec waiting next to the daemon's table
  std::string current; // the daemon's table file, which `staged` replaces
  if (!o.inputs.empty()) {
    const bool table = o.inputs.size() == 1 && gw::load::is_table_file(o.inputs[0]);
    if (table) {
      args["path"] = fs::absolute(o.inputs[0]).string();
    } else {
      // A spec: compile it here (all diagnostics locally), stage it next to the table gwd serves,
      // and have gwd serve it: gwd moves it over its table file once it loads.
      auto loaded = gw::load::load(o.inputs);
      print_diagnostics(stderr, loaded.diags, &loaded.sources, est);
      if (!loaded.ok()) {
        std::fprintf(stderr, "%serror%s: %s; gwd keeps its current table\n", est.red(), est.reset(),
                     summarize(loaded.diags).c_str());
        return kFailed;
      }
      auto info = call_daemon(g, "show info");
      if (!info) return info.exit_code;
      current = (*info.result)["table_path"].get<std::string>();
      staged = current + ".next";
      if (auto w = gw::table::write_file(staged, gw::table::encode(*loaded.config)); !w) {
        std::fprintf(stderr, "%serror%s: %s\n", est.red(), est.reset(), w.error().message.c_str());
        return kIoError;
      }
      args["path"] = staged;
    }
  }
  if (o.dry_run) {
    // gwd checks the table without serving it.
    if (!args.contains("path")) {
      auto info = call_daemon(g, "show info");
      if (!info) return info.exit_code;
      args["path"] = (*info.result)["table_path"];
    }
    auto checked = call_daemon(g, "check", {{"path", args["path"]}});
    if (!staged.empty()) fs::remove(staged);
    if (!checked) return checked.exit_code;
    Json res = std::move(*checked.result);
    // Name the file a reload would serve, not the staged copy that is gone now.
    res["path"] = staged.empty() ? args["path"] : Json(current);
    if (o.json)
      print_json(res);
    else
      std::printf(
          "would reload %s: sha256 %s, %s routes%s\n", res["path"].get<std::string>().c_str(),
          res["sha256"].get<std::string>().substr(0, 16).c_str(), res["routes"].dump().c_str(),
          res.value("unchanged", false) ? " (unchanged)" : "");
    return kOk;
  }
  // A staged spec replaces the daemon's table file only if gwd serves it (install): a refused
  // or busy reload leaves that file holding the table being served.
  if (!staged.empty()) args["install"] = true;
  auto r = call_daemon(g, "reload", args);
  if (!staged.empty()) {
    std::error_code ec;
    fs::remove(staged, ec); // still there unless gwd installed it
  }
  if (!r) return r.exit_code;
  const Json& res = *r.result;
  if (o.json) {
    print_json(res);
    return kOk;
  }
  const Style st = style_for(stdout, g.color);
  if (res.value("unchanged", false)) {
    std::printf("%sunchanged%s: generation %s already serves sha256 %s\n", st.green(), st.reset(),
                res["generation"].dump().c_str(),
                res["sha256"].get<std::string>().substr(0, 16).c_str());
  } else {
    std::printf("%sreloaded%s: generation %s -> %s, sha256 %s -> %s, %s -> %s routes, %s workers "
                "in %.1f ms\n",
                st.green(), st.reset(), res["previous_generation"].dump().c_str(),
                res["generation"].dump().c_str(),
                res["previous_sha256"].get<std::string>().substr(0, 12).c_str(),
                res["sha256"].get<std::string>().substr(0, 12).c_str(),
                res["previous_routes"].dump().c_str(), res["routes"].dump().c_str(),
                res["workers"].dump().c_str(), res["took_ms"].get<double>());
  }
  return kOk;
}

} // namespace gwctl
