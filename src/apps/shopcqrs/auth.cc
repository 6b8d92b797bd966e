#include "apps/shopcqrs/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include <openssl/rand.h>

#include <spdlog/spdlog.h>

namespace shopcqrs::apps {

std::shared_ptr<const infra::jwt::KeyRing> KeyRingOf(const AuthConfig& auth) {
  std::vector<infra::jwt::Key> keys;
  if (!auth.signing_key.empty()) {
    keys.push_back({infra::jwt::DerivedKid(auth.signing_key), auth.signing_key});
  }
  for (const auto& key : auth.signing_keys) keys.push_back({key.kid, key.key});
  if (keys.empty()) return nullptr;
  try {
    return std::make_shared<const infra::jwt::KeyRing>(std::move(keys));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("auth: ") + e.what());
  }
}

std::shared_ptr<adapters::http::Authorizer> AuthorizerOf(const Config& config) {
  if (auto errors = ServingAuthErrors(config); !errors.empty()) throw ConfigError(errors.front());
  adapters::http::Authorizer::Options options;
  options.enabled = config.auth.mode != "off";
  options.keys = KeyRingOf(config.auth);
  options.max_ttl = std::chrono::seconds(config.auth.max_ttl_s);
  options.customer_ttl = std::min(adapters::http::kCustomerTokenTtl, options.max_ttl);
  if (!options.enabled) {
    spdlog::warn(
        "auth.mode is off: the HTTP API accepts every request from anyone, with admin rights "
        "(for development only; /readyz reports \"auth\": \"off\")");
  }
  return std::make_shared<adapters::http::Authorizer>(std::move(options));
}

void WritePrivateFile(const std::filesystem::path& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot write " + path.string());
  }
  ::fchmod(fd, 0600);  // also when it existed with wider permissions
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      throw std::system_error(error, std::generic_category(), "cannot write " + path.string());
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

std::string UpSigningKey(const Config& config, const std::filesystem::path& root) {
  if (!config.auth.signing_key.empty()) return config.auth.signing_key;
  const auto path = root / "auth-key";
  std::string key;
  if (std::ifstream in(path); in) std::getline(in, key);
  if (key.size() >= kMinSigningKeyLength) {
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return key;
  }
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes for a key");
  static constexpr char kHex[] = "0123456789abcdef";
  key.clear();
  for (unsigned char b : bytes) {
    key += kHex[b >> 4];
    key += kHex[b & 0xf];
  }
  WritePrivateFile(path, key + "\n");
  return key;
}

std::filesystem::path WriteAdminToken(const Config& config, const std::filesystem::path& root) {
  const auto keys = KeyRingOf(config.auth);
  if (!keys) throw ConfigError("auth.signing_key: needed to write an admin token");
  adapters::http::Authorizer issuer({.enabled = true, .keys = keys});
  const auto issued = issuer.Issue(app::Principal::Admin("admin"), kUpAdminTokenTtl);
  const auto path = root / "admin-token";
  WritePrivateFile(path, issued.access_token + "\n");
  return path;
}

std::string MintToken(const Config& config, const std::optional<std::string>& customer_id,
                      const std::string& role, std::chrono::seconds ttl) {
  const auto keys = KeyRingOf(config.auth);
  if (!keys) throw ConfigError("auth.signing_key: needed to mint a token");
  if (ttl.count() < 1 || ttl.count() > config.auth.max_ttl_s) {
    throw ConfigError("--ttl: must be 1.." + std::to_string(config.auth.max_ttl_s) + " seconds");
  }
  app::Principal who;
  if (customer_id) {
    const auto id = domain::CustomerId::Parse(*customer_id);
    if (!id) throw ConfigError("--customer: must be a customer id (a UUID)");
    who = app::Principal::Customer(*id);
  } else if (role == "admin") {
    who = app::Principal::Admin("admin");
  } else if (role == "payments") {
    who = app::Principal::Payments("payments");
  } else {
    throw ConfigError("--role: must be admin or payments");
  }
  adapters::http::Authorizer issuer({.enabled = true, .keys = keys});
  return issuer.Issue(who, ttl).access_token;
}

}  // namespace shopcqrs::apps
