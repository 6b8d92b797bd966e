#pragma once

#include <optional>
#include <string>

#include "apps/shopcqrs/config.h"

// The command line's admin commands that act on a running process (docs/OPERATIONS.md): they
// call its admin API at `listen` of the configuration (or --url), with an admin token minted
// from the configuration's signing key.
namespace shopcqrs::apps {

// Exit codes of the admin commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;        // unreachable, refused, a server error
inline constexpr int kExitNotFound = 2;      // no such projection, or the aggregate is not parked
inline constexpr int kExitParked = 3;        // list: dead letters exist
inline constexpr int kExitStillFailing = 4;  // retry/skip: the events stay parked

struct DeadLetterCommand {
  std::string action;  // "list", "retry", "skip"
  std::optional<std::string> projection;
  std::optional<std::string> aggregate_id;
  std::optional<std::string> url;  // http://HOST:PORT of a projector process; default `listen`
};

// `shopcqrs dead-letters list [--projection P]`: prints the parked aggregates (exit 3 when there
// are any); `retry|skip PROJECTION AGGREGATE_ID`: retries or skips them and prints the outcome.
int DeadLetters(const Config& config, const DeadLetterCommand& command);

}  // namespace shopcqrs::apps
