// gwctl compile: specs -> a checksummed, reproducible .gwrt table, written atomically.
#include <cstdlib>

#include "commands.hpp"
#include "gw/core/sha256.hpp"
#include "gw/core/units.hpp"
#include "gw/load/load.hpp"
#include "gw/table/codec.hpp"
#include "output.hpp"

namespace gwctl {

int run_compile(const Global& g, const CompileOptions& o) {
  auto loaded = gw::load::load(o.inputs);
  if (o.werror) loaded.diags.promote_warnings();
  const Style st = style_for(stderr, g.color);
  print_diagnostics(stderr, loaded.diags, &loaded.sources, st);
  if (loaded.diags.has_errors() || !loaded.config) {
    std::fprintf(stderr, "%serror%s: %s; %s not written\n", st.red(), st.reset(),
                 summarize(loaded.diags).c_str(), o.output.c_str());
    for (const auto& d : loaded.diags)
      if (d.code == "input.unreadable") return kIoError;
    return kFailed;
  }

  gw::table::EncodeOptions eo;
  eo.label = o.label;
  if (o.timestamp >= 0) {
    eo.timestamp = static_cast<std::uint64_t>(o.timestamp);
  } else if (const char* sde = std::getenv("SOURCE_DATE_EPOCH")) {
    eo.timestamp = std::strtoull(sde, nullptr, 10);
  }
  const auto bytes = gw::table::encode(*loaded.config, eo);
  if (auto w = gw::table::write_file(o.output, bytes); !w) {
    std::fprintf(stderr, "%serror%s: %s\n", st.red(), st.reset(), w.error().message.c_str());
    return kIoError;
  }
  gw::Sha256 digest;
  std::copy(bytes.begin() + 32, bytes.begin() + 64, digest.begin());
  std::printf("compiled %s -> %s (%s, sha256 %s)\n", counts(*loaded.config).c_str(),
              o.output.c_str(), gw::units::format_size(bytes.size()).c_str(),
              gw::to_hex(digest).substr(0, 16).c_str());
  return kOk;
}

} // namespace gwctl
