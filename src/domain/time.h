#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace shopcqrs::domain {

// Every domain timestamp is UTC with millisecond precision.
using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

// RFC 3339 UTC with milliseconds, e.g. "2026-11-26T18:23:16.123Z".
std::string FormatTimestamp(Timestamp t);
// Parses the form FormatTimestamp writes (also accepts "+00:00" and fewer fraction digits).
std::optional<Timestamp> ParseTimestamp(std::string_view text);

}  // namespace shopcqrs::domain
