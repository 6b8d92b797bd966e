#pragma once

// The write side's HTTP routes (API.md "Commands"). Each handler parses the request, calls one
// CommandService::Handle and maps the answer; nothing else.
//
// Checks, in this order: a path id that is not a UUID is 404 not_found; then the body
// (415 unsupported_media_type, 400 malformed_json); then the headers Idempotency-Key and
// If-Match (400 validation_failed); then the body's fields (400 validation_failed).
//
// - Idempotency-Key: 1..200 characters, each printable ASCII without space (0x21..0x7E); sent
//   at most once. The request fingerprint is "sha256:" + the SHA-256 (hex, OpenSSL) of
//   method + "\n" + path + "\n" + body as sent (byte for byte: the same JSON re-serialized
//   differently is another request). Keys stored before carry the bare SHA-1 hex of the same
//   text; a request also matches those (LegacyRequestFingerprint) until they expire.
// - If-Match: `"<version>"` or bare `<version>` (decimal digits), or `*` (no version check).
//   Weak tags (W/"1") and lists are rejected. Ignored on creating commands.
// - Every success carries X-Consistency-Token and ETag: "<version>"; a 201 carries Location.
// - A TransientStoreError that outlasts the service's retries is 503 service_unavailable with
//   Retry-After: 1. Any other exception propagates (the server answers 500 internal_error).
// - Metrics: shopcqrs_commands_total{command,outcome} (outcome "ok" or the problem code) and
//   shopcqrs_command_duration_seconds{command}.

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/http/auth_policy.h"
#include "application/command_service.h"
#include "application/commands.h"
#include "infra/http/problem.h"
#include "infra/http/router.h"
#include "infra/metrics/registry.h"

namespace shopcqrs::adapters::http {

// Every use case acts for the request's principal (PrincipalOf: set by the Authorizer's guard;
// anonymous without one). POST /v1/customers also answers `access_token` (a customer token for
// the new customer) when `authorizer` can issue tokens, except on a replay. Also registers
// POST /v1/admin/tokens (RegisterTokenRoutes). No authorizer: Authorizer::Off().
void RegisterCommandRoutes(infra::http::Router& router, app::CommandService& service,
                           infra::metrics::Registry& registry,
                           std::shared_ptr<Authorizer> authorizer = nullptr);

// Helpers, exposed for tests and for other write-side routes.
inline constexpr std::size_t kMaxIdempotencyKeyLength = 200;

// "sha256:" + SHA-256 hex of method + "\n" + path + "\n" + body.
std::string RequestFingerprint(std::string_view method, std::string_view path,
                               std::string_view body);
// The earlier format: the bare SHA-1 hex of the same text.
std::string LegacyRequestFingerprint(std::string_view method, std::string_view path,
                                     std::string_view body);
// The Idempotency-Key header, if any, with this request's fingerprint.
std::expected<std::optional<app::Idempotency>, infra::http::Problem> ParseIdempotencyKey(
    const infra::http::Request& request);
// The If-Match header as an expected version, if any.
std::expected<std::optional<std::int64_t>, infra::http::Problem> ParseIfMatch(
    const infra::http::Request& request);

}  // namespace shopcqrs::adapters::http
