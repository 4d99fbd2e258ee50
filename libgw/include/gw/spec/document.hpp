// spec::Document: what a source document says, before any semantics, with the location of every
// value. Readers (toml_reader.hpp, later OpenAPI) produce it; model::validate() turns it into a
// model::Config. Types and unknown keys are checked by the readers; meaning is checked by validate.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/diagnostics.hpp"
#include "gw/core/sha256.hpp"

namespace gw::spec {

/// A loaded source file. Owned by a SourceSet; SourceLoc::file views `name`.
struct SourceFile {
  std::string name;
  std::string text;
  Sha256 digest{};
};

/// Owns the files of one load, at stable addresses. Not thread-safe.
class SourceSet {
public:
  const SourceFile& add(std::string name, std::string text);
  const std::vector<std::unique_ptr<SourceFile>>& files() const noexcept { return files_; }

private:
  std::vector<std::unique_ptr<SourceFile>> files_;
};

/// A value as written, with where it was written. `set` is false when the key was absent.
template <class T>
struct Field {
  T value{};
  SourceLoc loc{};
  bool set = false;
  bool bad = false; // present, but of the wrong type (already reported by the reader)

  explicit operator bool() const noexcept { return set; }
  const T& operator*() const noexcept { return value; }
};

using StringList = std::vector<Field<std::string>>;

struct EndpointSpec {
  Field<std::string> address; // "host:port"
  Field<std::int64_t> weight;
  SourceLoc loc;
};

struct UpstreamSpec {
  std::string name;
  SourceLoc loc;
  Field<std::vector<EndpointSpec>> endpoints;
  Field<std::string> balance;
  Field<std::string> hash_on; // "header:NAME" | "cookie:NAME" | "client_ip"
  Field<std::string> connect_timeout;
  bool imported = false; // derived from an OpenAPI server: a TOML upstream of that name replaces it
};

/// A header or query matcher: `{ name = "x-v", exact = "2" }`.
struct MatcherSpec {
  Field<std::string> name;
  Field<std::string> exact, prefix, suffix, contains, regex;
  Field<bool> present;
  Field<bool> invert;
  SourceLoc loc;
};

struct RewriteSpec {
  Field<std::string> path;   // template built from captured params: "/v2/pets/{id}"
  Field<std::string> prefix; // replaces the matched prefix (prefix routes)
  Field<std::string> host;
  SourceLoc loc;
  bool set = false;
};

struct RouteSpec {
  Field<std::string> name;
  Field<StringList> methods;
  Field<StringList> hosts;
  Field<std::string> path, prefix, template_, regex;
  Field<std::int64_t> priority;
  Field<std::string> upstream;
  Field<std::string> timeout, per_try_timeout;
  Field<std::int64_t> retries;
  Field<std::string> max_body; // size text; integers are kept as their decimal text
  Field<StringList> policies;
  Field<std::vector<MatcherSpec>> headers;
  Field<std::vector<MatcherSpec>> query;
  RewriteSpec rewrite;
  SourceLoc loc;
  std::vector<std::string> misspelled; // known keys an unknown key looked like ("upstream")
  bool imported = false;               // from an OpenAPI operation
};

/// `[policies.NAME]`: a kind plus kind-specific settings, kept as JSON until the policy's factory
/// checks them. `locs` maps each setting's JSON pointer to where it was written.
struct PolicySpec {
  std::string name;
  SourceLoc loc;
  Field<std::string> kind;
  nlohmann::json config = nlohmann::json::object();
  std::map<std::string, SourceLoc> locs;
  bool imported = false; // derived from OpenAPI: a TOML policy of that name replaces it
};

/// `[[attach]]`: policies for every route under a host and/or path prefix.
struct AttachSpec {
  Field<StringList> policies;
  Field<StringList> hosts;
  Field<std::string> prefix;
  SourceLoc loc;
};

/// `[defaults]`: values routes inherit when they do not set their own.
struct DefaultsSpec {
  Field<std::string> timeout, per_try_timeout, connect_timeout;
  Field<std::int64_t> retries;
  Field<std::string> max_body;
};

/// Everything read from one or more source files, merged in the order the files were given.
struct Document {
  std::vector<const SourceFile*> files;
  std::vector<UpstreamSpec> upstreams;
  std::vector<PolicySpec> policies;
  std::vector<AttachSpec> attach;
  std::vector<RouteSpec> routes;
  DefaultsSpec defaults;
};

} // namespace gw::spec
