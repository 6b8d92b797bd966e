#include "apps/shopcqrs/config.h"

#include <arpa/inet.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

namespace shopcqrs::apps {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The URLs of a `nats` setting (comma-separated; spaces around each and empty entries dropped,
// as infra::nats::SplitServerUrls does).
std::vector<std::string> SplitNatsUrls(std::string_view text) {
  std::vector<std::string> urls;
  while (true) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) urls.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return urls;
}

std::optional<long long> ParseInteger(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  long long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// Reads TOML nodes into Config fields with errors that name the key and line.
class TomlReader {
 public:
  explicit TomlReader(std::string_view source) : source_(source) {}

  [[noreturn]] void Fail(const toml::node& node, std::string_view key,
                         std::string_view problem) const {
    const auto& where = node.source().begin;
    throw ConfigError(
        fmt::format("{}:{}:{}: {}: {}", source_, where.line, where.column, key, problem));
  }

  void String(const toml::node& node, std::string_view key, std::string& out) const {
    if (auto value = node.value<std::string>(); value && node.is_string()) {
      out = *value;
      return;
    }
    Fail(node, key, fmt::format("expected a string, got {}", TypeName(node)));
  }

  void Int(const toml::node& node, std::string_view key, int& out) const {
    if (!node.is_integer())
      Fail(node, key, fmt::format("expected an integer, got {}", TypeName(node)));
    const std::int64_t value = *node.value<std::int64_t>();
    if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
      Fail(node, key, fmt::format("{} is out of range", value));
    }
    out = static_cast<int>(value);
  }

  void Bool(const toml::node& node, std::string_view key, bool& out) const {
    if (!node.is_boolean()) {
      Fail(node, key, fmt::format("expected true or false, got {}", TypeName(node)));
    }
    out = *node.value<bool>();
  }

  const toml::table& Table(const toml::node& node, std::string_view key) const {
    if (!node.is_table()) Fail(node, key, fmt::format("expected a table, got {}", TypeName(node)));
    return *node.as_table();
  }

  [[noreturn]] void Unknown(const toml::node& node, std::string_view key,
                            std::string_view known) const {
    Fail(node, key, fmt::format("unknown key (known here: {})", known));
  }

  // write_db = "conninfo"  or  [write_db] conninfo = "...", pool_size = N
  void Database(const toml::node& node, std::string_view key, std::string& conninfo,
                int& pool_size) const {
    if (node.is_string()) {
      String(node, key, conninfo);
      return;
    }
    if (!node.is_table()) {
      Fail(node, key, fmt::format("expected a conninfo string or a table, got {}", TypeName(node)));
    }
    for (const auto& [sub_key, sub_node] : *node.as_table()) {
      const std::string full = fmt::format("{}.{}", key, sub_key.str());
      if (sub_key == "conninfo") {
        String(sub_node, full, conninfo);
      } else if (sub_key == "pool_size") {
        Int(sub_node, full, pool_size);
      } else {
        Unknown(sub_node, full, "conninfo, pool_size");
      }
    }
  }

  static std::string_view TypeName(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::table:
        return "a table";
      case toml::node_type::array:
        return "an array";
      default:
        return "a date/time";
    }
  }

 private:
  std::string source_;
};

bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    if (++label > 63) return false;
  }
  return label > 0 || host.back() == '.';
}

// toml++ 3.3.0's whitespace test reaches __builtin_unreachable for U+00A1..U+0499 and
// U+FB26..U+FEFE (undefined behaviour; found by tests/fuzz/config_fuzz). The parser asks it
// about a non-ASCII character wherever whitespace may be, which is outside strings and
// comments (where TOML allows no such character: an error) and after a line-ending backslash
// in a multi-line basic string (valid TOML). So ApplyToml parses twice: first a copy with every
// non-ASCII character replaced by '^', which TOML allows in strings and comments only, so the
// copy parses exactly when every such character is in one; then, after the check below, the
// text itself.
constexpr char kNonAsciiStandIn = '^';

// The copy: one stand-in per UTF-8 sequence (continuation bytes dropped), so that toml++'s
// lines and columns, which count characters, are the text's.
std::string AsciiStandIn(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      out.push_back(c);
    } else if ((byte & 0xC0) != 0x80) {
      out.push_back(kNonAsciiStandIn);
    }
  }
  return out;
}

// In a text whose non-ASCII characters are all in strings and comments: the offset of the first
// one right after a line-ending backslash of a multi-line basic string (and its whitespace), if
// any. It scans TOML's four string forms and comments.
std::optional<std::size_t> NonAsciiAfterLineEndingBackslash(std::string_view text) {
  enum class State { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  State state = State::kCode;
  const auto at = [&](std::size_t i, std::string_view s) { return text.substr(i).starts_with(s); };
  // Past a multi-line closing delimiter at i, with up to two quotes before it that belong to
  // the string ("""a"""" is a + '"').
  const auto close = [&](std::size_t& i, char quote) {
    i += 2;
    for (int extra = 0; extra < 2 && i + 1 < text.size() && text[i + 1] == quote; ++extra) ++i;
    state = State::kCode;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (state) {
      case State::kCode:
        if (c == '#') {
          state = State::kComment;
        } else if (at(i, R"(""")")) {
          state = State::kMultiBasic;
          i += 2;
        } else if (at(i, "'''")) {
          state = State::kMultiLiteral;
          i += 2;
        } else if (c == '"') {
          state = State::kBasic;
        } else if (c == '\'') {
          state = State::kLiteral;
        }
        break;
      case State::kComment:
        if (c == '\n') state = State::kCode;
        break;
      case State::kBasic:
        if (c == '\\') {
          ++i;
        } else if (c == '"' || c == '\n') {
          state = State::kCode;
        }
        break;
      case State::kLiteral:
        if (c == '\'' || c == '\n') state = State::kCode;
        break;
      case State::kMultiBasic:
        if (c == '\\') {
          const auto next = text.find_first_not_of(" \t\r\n", i + 1);
          if (next != i + 1 && next != std::string_view::npos &&
              static_cast<unsigned char>(text[next]) >= 0x80) {
            return next;
          }
          ++i;
        } else if (at(i, R"(""")")) {
          close(i, '"');
        }
        break;
      case State::kMultiLiteral:
        if (at(i, "'''")) close(i, '\'');
        break;
    }
  }
  return std::nullopt;
}

// The byte of `text` where character `index` of its stand-in copy starts.
std::size_t ByteOfCharacter(std::string_view text, std::size_t index) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && index-- == 0) return i;
  }
  return text.size();
}

// toml++'s error as a ConfigError.
ConfigError TomlError(std::string_view source, const toml::parse_error& e,
                      std::string_view description) {
  return ConfigError(fmt::format("{}:{}:{}: invalid TOML: {}", source, e.source().begin.line,
                                 e.source().begin.column, description));
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    if (const char* value = std::getenv(std::string(name).c_str())) return std::string(value);
    return std::nullopt;
  };
}

EnvLookup MapEnvironment(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    return std::nullopt;
  };
}

std::optional<bool> ParseBool(std::string_view text) {
  const std::string value = Lower(text);
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  return std::nullopt;
}

namespace {

// ---- auth: the [auth] table (auth.mode only here: no environment variable or flag sets it) ----
void ApplyAuthToml(const TomlReader& reader, const toml::table& table, AuthConfig& auth) {
  for (const auto& [sub_key, sub_node] : table) {
    const std::string full = fmt::format("auth.{}", sub_key.str());
    if (sub_key == "mode") {
      reader.String(sub_node, full, auth.mode);
    } else if (sub_key == "signing_key") {
      reader.String(sub_node, full, auth.signing_key);
    } else if (sub_key == "max_ttl_s") {
      if (!sub_node.is_integer()) reader.Fail(sub_node, full, "expected an integer");
      auth.max_ttl_s = *sub_node.value<std::int64_t>();
    } else if (sub_key == "signing_keys") {
      const toml::array* keys = sub_node.as_array();
      if (keys == nullptr) reader.Fail(sub_node, full, "expected an array of {kid, key} tables");
      auth.signing_keys.clear();
      for (std::size_t i = 0; i < keys->size(); ++i) {
        const std::string item = fmt::format("{}[{}]", full, i);
        AuthConfig::Key key;
        for (const auto& [k, v] : reader.Table(*keys->get(i), item)) {
          const std::string name = fmt::format("{}.{}", item, k.str());
          if (k == "kid") {
            reader.String(v, name, key.kid);
          } else if (k == "key") {
            reader.String(v, name, key.key);
          } else {
            reader.Unknown(v, name, "kid, key");
          }
        }
        auth.signing_keys.push_back(std::move(key));
      }
    } else {
      reader.Unknown(sub_node, full, "mode, signing_key, signing_keys, max_ttl_s");
    }
  }
}

std::vector<std::string> ValidateAuth(const AuthConfig& auth) {
  std::vector<std::string> errors;
  if (auth.mode != "on" && auth.mode != "off") {
    errors.push_back(fmt::format("auth.mode: '{}' is not one of on, off", auth.mode));
  }
  if (!auth.signing_key.empty() && auth.signing_key.size() < kMinSigningKeyLength) {
    errors.push_back(
        fmt::format("auth.signing_key: must be at least {} bytes", kMinSigningKeyLength));
  }
  std::vector<std::string_view> kids;
  for (std::size_t i = 0; i < auth.signing_keys.size(); ++i) {
    const auto& key = auth.signing_keys[i];
    const bool kid_ok =
        !key.kid.empty() && key.kid.size() <= 64 &&
        std::all_of(key.kid.begin(), key.kid.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
        });
    if (!kid_ok) {
      errors.push_back(
          fmt::format("auth.signing_keys[{}].kid: must be 1..64 characters [A-Za-z0-9._-]", i));
    } else if (std::find(kids.begin(), kids.end(), key.kid) != kids.end()) {
      errors.push_back(fmt::format("auth.signing_keys[{}].kid: '{}' is used twice", i, key.kid));
    }
    kids.push_back(key.kid);
    if (key.key.size() < kMinSigningKeyLength) {
      errors.push_back(fmt::format("auth.signing_keys[{}].key: must be at least {} bytes", i,
                                   kMinSigningKeyLength));
    }
  }
  if (auth.max_ttl_s < 1 || auth.max_ttl_s > kMaxTokenTtlLimit) {
    errors.push_back(fmt::format("auth.max_ttl_s: must be 1..{}", kMaxTokenTtlLimit));
  }
  return errors;
}

}  // namespace

void ApplyToml(Config& config, std::string_view toml_text, std::string_view source) {
  // First the stand-in copy (see AsciiStandIn): it fails where the text has a non-ASCII
  // character outside strings and comments, or any other error.
  const std::string ascii = AsciiStandIn(toml_text);
  try {
    (void)toml::parse(ascii, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::size_t offset = 0;  // of the error's position in `ascii`
    for (std::uint32_t line = 1; line < where.line && offset != std::string::npos; ++line) {
      offset = ascii.find('\n', offset);
      if (offset != std::string::npos) ++offset;
    }
    if (offset != std::string::npos) offset += where.column - 1;
    const std::size_t byte =
        offset == std::string::npos ? toml_text.size() : ByteOfCharacter(toml_text, offset);
    const bool stand_in =
        byte < toml_text.size() && static_cast<unsigned char>(toml_text[byte]) >= 0x80;
    throw TomlError(
        source, e,
        stand_in ? "a non-ASCII character outside a string or comment" : e.description());
  }
  if (const auto offset = NonAsciiAfterLineEndingBackslash(toml_text)) {
    const auto before = toml_text.substr(0, *offset);
    const auto line_start = before.rfind('\n');
    const auto line = before.substr(line_start == std::string_view::npos ? 0 : line_start + 1);
    const auto column = std::count_if(line.begin(), line.end(), [](char c) {
      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    });
    throw ConfigError(fmt::format(
        "{}:{}:{}: a non-ASCII character right after a line-ending backslash is not supported "
        "(toml++ 3.3.0 cannot read it); put it on the line of the backslash, or escape it",
        source, std::count(before.begin(), before.end(), '\n') + 1, column + 1));
  }
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    throw TomlError(source, e, e.description());
  }
  TomlReader reader(source);
  constexpr std::string_view kTopLevel =
      "listen, http_threads, query_source, token_secret, write_db, read_db, redis, nats, "
      "projection_source, roles, api, projectors, relay, broker, log, auth";
  for (const auto& [key, node] : root) {
    const std::string_view name = key.str();
    if (name == "listen") {
      reader.String(node, name, config.listen);
    } else if (name == "http_threads") {
      reader.Int(node, name, config.http_threads);
    } else if (name == "query_source") {
      reader.String(node, name, config.query_source);
    } else if (name == "token_secret") {
      reader.String(node, name, config.token_secret);
    } else if (name == "redis") {
      reader.String(node, name, config.redis);
    } else if (name == "nats") {
      if (const toml::array* list = node.as_array()) {  // the nodes of a cluster
        std::string urls;
        for (const auto& item : *list) {
          const auto* url = item.as_string();
          if (!url) {
            reader.Fail(item, name,
                        fmt::format("expected URLs (strings), got {}", TomlReader::TypeName(item)));
          }
          if (!urls.empty()) urls += ',';
          urls += url->get();
        }
        config.nats = std::move(urls);
      } else {
        reader.String(node, name, config.nats);
      }
    } else if (name == "broker") {
      for (const auto& [sub_key, sub_node] : reader.Table(node, name)) {
        const std::string full = fmt::format("broker.{}", sub_key.str());
        if (sub_key == "replicas") {
          reader.Int(sub_node, full, config.broker_replicas);
        } else {
          reader.Unknown(sub_node, full, "replicas");
        }
      }
    } else if (name == "projection_source") {
      reader.String(node, name, config.projection_source);
    } else if (name == "write_db") {
      reader.Database(node, name, config.write_db, config.write_pool_size);
    } else if (name == "read_db") {
      reader.Database(node, name, config.read_db, config.read_pool_size);
    } else if (name == "roles") {
      const toml::array* list = node.as_array();
      if (!list)
        reader.Fail(
            node, name,
            fmt::format("expected an array of role names, got {}", TomlReader::TypeName(node)));
      config.roles.clear();
      for (const auto& item : *list) {
        const auto* role = item.as_string();
        if (!role)
          reader.Fail(
              item, name,
              fmt::format("expected role names (strings), got {}", TomlReader::TypeName(item)));
        for (auto& parsed : ParseRoles(role->get(), fmt::format("{}: roles", source))) {
          config.roles.push_back(std::move(parsed));
        }
      }
      if (config.roles.empty()) {
        throw ConfigError(
            fmt::format("{}: roles: name at least one of {}", source, fmt::join(kRoles, ", ")));
      }
    } else if (name == "api" || name == "projectors" || name == "relay") {
      bool& enabled = name == "api"          ? config.run_api
                      : name == "projectors" ? config.run_projectors
                                             : config.run_relay;
      for (const auto& [sub_key, sub_node] : reader.Table(node, name)) {
        const std::string full = fmt::format("{}.{}", name, sub_key.str());
        if (sub_key == "enabled") {
          reader.Bool(sub_node, full, enabled);
        } else {
          reader.Unknown(sub_node, full, "enabled");
        }
      }
    } else if (name == "auth") {
      ApplyAuthToml(reader, reader.Table(node, name), config.auth);
    } else if (name == "log") {
      for (const auto& [sub_key, sub_node] : reader.Table(node, name)) {
        const std::string full = fmt::format("log.{}", sub_key.str());
        if (sub_key == "level") {
          reader.String(sub_node, full, config.log_level);
        } else {
          reader.Unknown(sub_node, full, "level");
        }
      }
    } else {
      reader.Unknown(node, name, kTopLevel);
    }
  }
}

void ApplyEnvironment(Config& config, const EnvLookup& env) {
  auto get = [&](std::string_view name) -> std::optional<std::string> {
    auto value = env(name);
    if (!value || value->empty()) return std::nullopt;  // empty counts as unset
    return value;
  };
  auto string_var = [&](std::string_view name, std::string& out) {
    if (auto value = get(name)) out = *value;
  };
  auto int_var = [&](std::string_view name, int& out) {
    if (auto value = get(name)) {
      auto parsed = ParseInteger(*value);
      if (!parsed || *parsed < std::numeric_limits<int>::min() ||
          *parsed > std::numeric_limits<int>::max()) {
        throw ConfigError(fmt::format("{}: expected an integer, got '{}'", name, *value));
      }
      out = static_cast<int>(*parsed);
    }
  };
  auto bool_var = [&](std::string_view name, bool& out) {
    if (auto value = get(name)) {
      auto parsed = ParseBool(*value);
      if (!parsed) {
        throw ConfigError(fmt::format("{}: expected true/false (or 1/0, yes/no, on/off), got '{}'",
                                      name, *value));
      }
      out = *parsed;
    }
  };
  string_var("SHOPCQRS_LISTEN", config.listen);
  string_var("SHOPCQRS_WRITE_DB", config.write_db);
  string_var("SHOPCQRS_READ_DB", config.read_db);
  int_var("SHOPCQRS_WRITE_POOL_SIZE", config.write_pool_size);
  int_var("SHOPCQRS_READ_POOL_SIZE", config.read_pool_size);
  int_var("SHOPCQRS_HTTP_THREADS", config.http_threads);
  bool_var("SHOPCQRS_RUN_API", config.run_api);
  bool_var("SHOPCQRS_RUN_PROJECTORS", config.run_projectors);
  string_var("SHOPCQRS_LOG_LEVEL", config.log_level);
  string_var("SHOPCQRS_QUERY_SOURCE", config.query_source);
  string_var("SHOPCQRS_TOKEN_SECRET", config.token_secret);
  string_var("SHOPCQRS_AUTH_SIGNING_KEY", config.auth.signing_key);  // never auth.mode
  string_var("SHOPCQRS_REDIS", config.redis);
  string_var("SHOPCQRS_NATS", config.nats);
  int_var("SHOPCQRS_BROKER_REPLICAS", config.broker_replicas);
  string_var("SHOPCQRS_PROJECTION_SOURCE", config.projection_source);
  bool_var("SHOPCQRS_RUN_RELAY", config.run_relay);
  if (auto value = get("SHOPCQRS_ROLES")) config.roles = ParseRoles(*value, "SHOPCQRS_ROLES");
}

std::string ConfigToml(const Config& config) {
  toml::table root;
  root.insert("listen", config.listen);
  root.insert("http_threads", config.http_threads);
  root.insert("query_source", config.query_source);
  root.insert("token_secret", config.token_secret);
  root.insert("redis", config.redis);
  root.insert("nats", config.nats);
  root.insert("projection_source", config.projection_source);
  root.insert("write_db",
              toml::table{{"conninfo", config.write_db}, {"pool_size", config.write_pool_size}});
  root.insert("read_db",
              toml::table{{"conninfo", config.read_db}, {"pool_size", config.read_pool_size}});
  if (!config.roles.empty()) {
    toml::array roles;
    for (const auto& role : config.roles) roles.push_back(role);
    root.insert("roles", std::move(roles));
  }
  root.insert("api", toml::table{{"enabled", config.run_api}});
  root.insert("projectors", toml::table{{"enabled", config.run_projectors}});
  root.insert("relay", toml::table{{"enabled", config.run_relay}});
  root.insert("broker", toml::table{{"replicas", config.broker_replicas}});
  root.insert("log", toml::table{{"level", config.log_level}});
  toml::array keys;
  for (const auto& key : config.auth.signing_keys) {
    keys.push_back(toml::table{{"kid", key.kid}, {"key", key.key}});
  }
  root.insert("auth", toml::table{{"mode", config.auth.mode},
                                  {"signing_key", config.auth.signing_key},
                                  {"signing_keys", std::move(keys)},
                                  {"max_ttl_s", config.auth.max_ttl_s}});
  std::ostringstream out;
  out << root << "\n";
  return out.str();
}

std::vector<std::string> ParseRoles(std::string_view text, std::string_view source) {
  std::vector<std::string> roles;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string_view name = text.substr(start, comma - start);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (std::find(std::begin(kRoles), std::end(kRoles), name) == std::end(kRoles)) {
      throw ConfigError(fmt::format("{}: '{}' is not a role; expected a comma-separated list of {}",
                                    source, name, fmt::join(kRoles, ", ")));
    }
    roles.emplace_back(name);
    start = comma + 1;
  }
  return roles;
}

Config LoadConfig(const std::optional<std::filesystem::path>& file, const EnvLookup& env) {
  Config config;
  if (file) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) {
      std::error_code ec;
      throw ConfigError(
          fmt::format("config file {}: {}", file->string(),
                      std::filesystem::exists(*file, ec) ? "cannot be read" : "not found"));
    }
    std::ostringstream text;
    text << in.rdbuf();
    ApplyToml(config, text.str(), file->string());
  }
  ApplyEnvironment(config, env);
  return config;
}

std::expected<ListenAddress, std::string> ParseListenAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return std::unexpected(
        fmt::format("listen address '{}' {}; expected HOST:PORT such as "
                    "127.0.0.1:8080 or [::1]:8080",
                    text, why));
  };
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed '['");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("has no port");
    port = text.substr(close + 2);
    in6_addr addr{};
    if (::inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
      return bad("has an invalid IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty()) return bad("has no host (use 0.0.0.0 for every interface)");
    if (host.find(':') != std::string_view::npos) return bad("needs brackets around IPv6");
    const bool numeric = std::all_of(host.begin(), host.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
    });
    in_addr addr{};
    if (numeric ? ::inet_pton(AF_INET, std::string(host).c_str(), &addr) != 1 : !IsHostName(host)) {
      return bad(numeric ? "has an invalid IPv4 address" : "has an invalid host name");
    }
  }
  if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    return bad("has no numeric port");
  }
  auto value = ParseInteger(port);
  if (!value || *value < 0 || *value > 65535) return bad("has a port outside 0..65535");
  return ListenAddress{std::string(host), static_cast<std::uint16_t>(*value)};
}

std::vector<std::string> ValidateConfig(const Config& config) {
  std::vector<std::string> errors;
  if (auto listen = ParseListenAddress(config.listen); !listen) {
    errors.push_back(listen.error());  // "listen address '...' ..."
  }
  auto check_db = [&](std::string_view name, const std::string& conninfo, std::string_view env) {
    if (conninfo.empty()) {
      errors.push_back(fmt::format(
          "{}: no connection string; set {}.conninfo in the config file or {}", name, name, env));
      return;
    }
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    if (options == nullptr) {
      std::string message = error ? error : "out of memory";
      PQfreemem(error);
      while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
        message.pop_back();
      }
      errors.push_back(fmt::format("{}: invalid libpq connection string: {}", name, message));
      return;
    }
    PQconninfoFree(options);
  };
  check_db("write_db", config.write_db, "SHOPCQRS_WRITE_DB");
  check_db("read_db", config.read_db, "SHOPCQRS_READ_DB");
  if (!config.write_db.empty() && config.write_db == config.read_db) {
    errors.push_back(
        "write_db and read_db are the same database; the read models must live in a "
        "separate database (ideally a separate server)");
  }
  auto check_range = [&](std::string_view name, int value, int min, int max) {
    if (value < min || value > max) {
      errors.push_back(fmt::format("{}: {} is out of range {}..{}", name, value, min, max));
    }
  };
  check_range("write_db.pool_size", config.write_pool_size, kMinPoolSize, kMaxPoolSize);
  check_range("read_db.pool_size", config.read_pool_size, kMinPoolSize, kMaxPoolSize);
  check_range("http_threads", config.http_threads, kMinHttpThreads, kMaxHttpThreads);
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), config.log_level) ==
      std::end(kLogLevels)) {
    errors.push_back(fmt::format("log.level: '{}' is not one of {}", config.log_level,
                                 fmt::join(kLogLevels, ", ")));
  }
  if (std::find(std::begin(kQuerySources), std::end(kQuerySources), config.query_source) ==
      std::end(kQuerySources)) {
    errors.push_back(fmt::format("query_source: '{}' is not one of {}", config.query_source,
                                 fmt::join(kQuerySources, ", ")));
  }
  if (config.query_source == "redis" && config.redis.empty()) {
    errors.push_back("query_source: 'redis' needs redis (HOST:PORT)");
  }
  if (!config.redis.empty()) {
    auto redis = ParseListenAddress(config.redis);
    if (!redis || redis->port == 0) {
      errors.push_back(fmt::format("redis: '{}' must be HOST:PORT", config.redis));
    }
  }
  if (std::find(std::begin(kProjectionSources), std::end(kProjectionSources),
                config.projection_source) == std::end(kProjectionSources)) {
    errors.push_back(fmt::format("projection_source: '{}' is not one of {}",
                                 config.projection_source, fmt::join(kProjectionSources, ", ")));
  } else if (config.projection_source == "broker" && config.nats.empty()) {
    errors.push_back("projection_source: 'broker' needs nats (the nats-server URL)");
  }
  if (!config.nats.empty()) {
    const auto urls = SplitNatsUrls(config.nats);
    if (urls.empty()) {
      errors.push_back(fmt::format("nats: '{}' must be nats://HOST:PORT", config.nats));
    }
    for (const auto& text : urls) {
      std::string_view url = text;
      if (url.starts_with("nats://")) url.remove_prefix(7);
      auto nats = ParseListenAddress(url);
      if (!nats || nats->port == 0) {
        errors.push_back(fmt::format("nats: '{}' must be nats://HOST:PORT", text));
      }
    }
  }
  if (config.broker_replicas < 0 || config.broker_replicas > kMaxBrokerReplicas) {
    errors.push_back(fmt::format("broker.replicas: must be 0..{} (0: one per nats URL, at most 3)",
                                 kMaxBrokerReplicas));
  }
  if (!config.roles.empty()) {
    std::vector<std::string> seen;
    for (const auto& role : config.roles) {
      if (std::find(seen.begin(), seen.end(), role) != seen.end()) {
        errors.push_back(fmt::format("roles: '{}' is named twice", role));
      }
      seen.push_back(role);
    }
    const auto has = [&](std::string_view role) {
      return std::find(seen.begin(), seen.end(), role) != seen.end();
    };
    if (has("relay") && config.nats.empty()) {
      errors.push_back("roles: 'relay' needs nats (the nats-server URL)");
    }
    if (!config.run_api || !config.run_projectors || !config.run_relay) {
      errors.push_back(
          "roles: set either roles or the api/projectors/relay switches (off here), not both");
    }
  }
  if (!config.token_secret.empty() && config.token_secret.size() < kMinTokenSecretLength) {
    errors.push_back(fmt::format("token_secret: must be at least {} characters (or empty)",
                                 kMinTokenSecretLength));
  }
  for (auto& error : ValidateAuth(config.auth)) errors.push_back(std::move(error));
  return errors;
}

int BrokerReplicas(const Config& config) {
  if (config.broker_replicas > 0) return config.broker_replicas;
  const auto urls = static_cast<int>(SplitNatsUrls(config.nats).size());
  return std::clamp(urls, 1, 3);
}

std::vector<std::string> ServingAuthErrors(const Config& config) {
  const AuthConfig& auth = config.auth;
  if (auth.mode == "on" && auth.signing_key.empty() && auth.signing_keys.empty()) {
    return {
        "auth.signing_key: required while auth.mode is on (at least 32 bytes, e.g. from "
        "`openssl rand -hex 32`; or SHOPCQRS_AUTH_SIGNING_KEY)"};
  }
  return {};
}

void ValidateConfigOrThrow(const Config& config) {
  auto errors = ValidateConfig(config);
  if (errors.empty()) return;
  std::string message = "invalid configuration:";
  for (const auto& error : errors) message += "\n  " + error;
  throw ConfigError(message);
}

void ApplyLogLevel(const Config& config) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
}

std::string RedactConninfo(std::string_view conninfo) {
  if (conninfo.empty()) return {};
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(std::string(conninfo).c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return "<invalid conninfo>";
  }
  std::string out;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (o->val == nullptr) continue;
    if (!out.empty()) out += ' ';
    const std::string_view keyword = o->keyword;
    if (keyword == "password") {
      out += "password=***";
      continue;
    }
    std::string value = o->val;
    const bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
      return std::isspace(static_cast<unsigned char>(c)) || c == '\'' || c == '\\';
    });
    if (!plain) {
      std::string quoted = "'";
      for (char c : value) {
        if (c == '\'' || c == '\\') quoted += '\\';
        quoted += c;
      }
      value = quoted + "'";
    }
    out += fmt::format("{}={}", keyword, value);
  }
  PQconninfoFree(options);
  return out;
}

std::string DescribeConfig(const Config& config) {
  return fmt::format(
      "listen={} write_db=[{}] write_pool_size={} read_db=[{}] read_pool_size={} "
      "http_threads={} api={} projectors={} log_level={} query_source={} redis={} nats={} "
      "projection_source={} relay={} roles={} token_secret={} auth.mode={} auth.signing_keys={} "
      "broker.replicas={}",
      config.listen, RedactConninfo(config.write_db), config.write_pool_size,
      RedactConninfo(config.read_db), config.read_pool_size, config.http_threads,
      config.run_api ? "on" : "off", config.run_projectors ? "on" : "off", config.log_level,
      config.query_source, config.redis.empty() ? "(none)" : config.redis,
      config.nats.empty() ? "(none)" : config.nats, config.projection_source,
      config.run_relay ? "on" : "off",
      config.roles.empty() ? "(from the switches)"
                           : fmt::format("{}", fmt::join(config.roles, ",")),
      config.token_secret.empty() ? "(unset)" : "***", config.auth.mode,
      (config.auth.signing_key.empty() ? 0 : 1) + config.auth.signing_keys.size(),
      BrokerReplicas(config));
}

}  // namespace shopcqrs::apps
