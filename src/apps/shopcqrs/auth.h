#pragma once

// Authentication as the configuration builds it: the key ring and the HTTP layer's Authorizer
// (one object, handed to the router), `up`'s signing key and admin token, `shopcqrs token`.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "adapters/http/auth_policy.h"
#include "apps/shopcqrs/config.h"
#include "infra/jwt/jwt.h"

namespace shopcqrs::apps {

inline constexpr std::chrono::seconds kUpAdminTokenTtl{30 * 24 * 3600};

// The signing keys of `auth`: auth.signing_key first (kid derived from it), then
// auth.signing_keys in their order; nullptr when there are none. The first one signs.
std::shared_ptr<const infra::jwt::KeyRing> KeyRingOf(const AuthConfig& auth);

// The Authorizer of a validated configuration. With auth.mode = "off" it logs a warning (every
// request is then allowed everything). Throws ConfigError when auth is on without a key.
std::shared_ptr<adapters::http::Authorizer> AuthorizerOf(const Config& config);

// `up`'s signing key: auth.signing_key when set (SHOPCQRS_AUTH_SIGNING_KEY), else the one kept in
// `root`/auth-key (32 random bytes as hex, created on first start with mode 0600, reused after).
std::string UpSigningKey(const Config& config, const std::filesystem::path& root);

// Writes a fresh admin token (valid kUpAdminTokenTtl) to `root`/admin-token, mode 0600, and
// answers that path. Needs a signing key in `config`.
std::filesystem::path WriteAdminToken(const Config& config, const std::filesystem::path& root);

// Writes `content` to `path` readable and writable by its owner only (0600, also when the file
// existed with wider permissions).
void WritePrivateFile(const std::filesystem::path& path, const std::string& content);

// `shopcqrs token`: a token for a customer (`customer_id`) or, without one, for `role` ("admin"
// or "payments"), valid `ttl` (at most auth.max_ttl_s). Throws ConfigError on bad input.
std::string MintToken(const Config& config, const std::optional<std::string>& customer_id,
                      const std::string& role, std::chrono::seconds ttl);

}  // namespace shopcqrs::apps
