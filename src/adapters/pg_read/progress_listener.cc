#include "adapters/pg_read/progress_listener.h"

#include <charconv>

#include <spdlog/spdlog.h>

#include "adapters/pg_read/projection_support.h"
#include "infra/pg/connection.h"

namespace shopcqrs::adapters::pg_read {

namespace {

constexpr std::chrono::milliseconds kStep{100};  // how soon a stop request is seen

struct Progress {
  std::uint64_t bound = 0;
  std::uint64_t generation = 0;  // of the dead letters
};

std::optional<std::uint64_t> Number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A "<name>:<bound>:<dead-letter generation>" payload (queries::kNotifyProgress) for projection
// `name`.
std::optional<Progress> ProgressOf(std::string_view payload, std::string_view name) {
  if (!payload.starts_with(name) || payload.substr(name.size(), 1) != ":") return std::nullopt;
  payload.remove_prefix(name.size() + 1);
  const auto colon = payload.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto bound = Number(payload.substr(0, colon));
  auto generation = Number(payload.substr(colon + 1));
  if (!bound || !generation) return std::nullopt;
  return Progress{*bound, *generation};
}

}  // namespace

ProgressListener::ProgressListener(std::string conninfo, cqrs::ProgressTracker& tracker,
                                   std::string name, std::chrono::milliseconds poll_interval)
    : conninfo_(std::move(conninfo)),
      tracker_(tracker),
      name_(std::move(name)),
      poll_interval_(poll_interval),
      thread_([this](std::stop_token stop) { Run(std::move(stop)); }) {}

void ProgressListener::Reload(infra::pg::Connection& connection, std::uint64_t generation,
                              bool always) {
  if (!always && loaded_generation_ == generation) return;
  auto letters = projection_support::ReadDeadLetters(connection, name_, false);
  tracker_.SetParked(letters.empty() ? nullptr
                                     : std::make_shared<const cqrs::ParkedIndex>(letters));
  loaded_generation_ = generation;
}

void ProgressListener::Run(std::stop_token stop) {
  infra::pg::ReconnectingConnection connection(
      {.conninfo = conninfo_,
       .session = {.application_name = "shopcqrs-progress-listener"},
       .listen = {kProgressChannel}});
  std::uint64_t polled_session = 0;
  auto last_poll = std::chrono::steady_clock::time_point{};
  while (!stop.stop_requested()) {
    try {
      auto& c = connection.Get();
      const auto now = std::chrono::steady_clock::now();
      if (connection.Sessions() != polled_session || now - last_poll >= poll_interval_) {
        // Set, not raised: after a read-server restart the stored bound is the truth, even if
        // lower than what was heard before (notifications only ever raise it).
        auto rows = c.Exec(
            "SELECT bound, dead_letter_generation FROM projection_checkpoints WHERE name = $1",
            infra::pg::Params().Add(name_));
        if (rows.rows() == 1) {
          // The parked events first: the bound may lie past them.
          Reload(c, static_cast<std::uint64_t>(rows.Int64(0, 1)), true);
          tracker_.Reset(static_cast<std::uint64_t>(rows.Int64(0, 0)));
        }
        polled_session = connection.Sessions();
        last_poll = now;
      }
      for (const auto& notification : c.WaitForNotifications(kStep)) {
        if (auto progress = ProgressOf(notification.payload, name_)) {
          Reload(c, progress->generation, false);
          tracker_.Publish(progress->bound);
        }
      }
    } catch (const std::exception& error) {
      spdlog::warn("progress listener: {}", error.what());
      connection.Reset();
      for (int i = 0; i < 10 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(kStep);
    }
  }
}

}  // namespace shopcqrs::adapters::pg_read
