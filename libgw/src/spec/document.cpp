#include "gw/spec/document.hpp"

namespace gw::spec {

const SourceFile& SourceSet::add(std::string name, std::string text) {
  auto f = std::make_unique<SourceFile>();
  f->name = std::move(name);
  f->text = std::move(text);
  f->digest = sha256(f->text);
  files_.push_back(std::move(f));
  return *files_.back();
}

} // namespace gw::spec
