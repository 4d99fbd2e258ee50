#include <catch2/catch.hpp>

#include "gw/model/config.hpp"

using gw::model::portable_source_names;
using Names = std::vector<std::string>;

TEST_CASE("a table names its sources by their shortest distinguishing tail", "[model]") {
  CHECK(portable_source_names({"/srv/gw/specs/demo.toml"}) == Names{"demo.toml"});
  CHECK(portable_source_names({"/a/routes.toml", "/b/routes.toml", "/a/upstreams.toml"}) ==
        Names{"a/routes.toml", "b/routes.toml", "upstreams.toml"});
  CHECK(portable_source_names({"/x/api/v1.yaml", "/y/api/v1.yaml"}) ==
        Names{"x/api/v1.yaml", "y/api/v1.yaml"});
  // The same file twice is one file, not two to tell apart.
  CHECK(portable_source_names({"/a/x.toml", "/a/x.toml"}) == Names{"x.toml", "x.toml"});
  // A path that is a tail of another has no distinguishing tail of its own.
  CHECK(portable_source_names({"/a/b.toml", "/x/a/b.toml"}) == Names{"/a/b.toml", "x/a/b.toml"});
}

TEST_CASE("messages name a source by its path as read, a table by its recorded name", "[model]") {
  gw::model::Config c;
  c.sources.push_back({"demo.toml", {}, "specs/demo.toml"});
  c.sources.push_back({"other.toml", {}, ""});
  CHECK(c.where({0, 12, 1}) == "specs/demo.toml:12");
  CHECK(c.where({1, 3, 1}) == "other.toml:3");
  // The path is not part of what a table holds: configs equal but for it are equal.
  gw::model::Config d = c;
  d.sources[0].path.clear();
  CHECK(c == d);
}
