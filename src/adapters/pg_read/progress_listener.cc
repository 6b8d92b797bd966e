#include "adapters/pg_read/progress_listener.h"

#include <charconv>

#include <spdlog/spdlog.h>

#include "infra/pg/connection.h"

namespace shopcqrs::adapters::pg_read {

namespace {

constexpr std::chrono::milliseconds kStep{100};  // how soon a stop request is seen

// The bound of a "<name>:<bound>" payload for projection `name`.
std::optional<std::uint64_t> BoundOf(std::string_view payload, std::string_view name) {
  const auto colon = payload.rfind(':');
  if (colon == std::string_view::npos || payload.substr(0, colon) != name) return std::nullopt;
  std::uint64_t bound = 0;
  const auto text = payload.substr(colon + 1);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), bound);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return bound;
}

}  // namespace

ProgressListener::ProgressListener(std::string conninfo, cqrs::ProgressTracker& tracker,
                                   std::string name, std::chrono::milliseconds poll_interval)
    : conninfo_(std::move(conninfo)),
      tracker_(tracker),
      name_(std::move(name)),
      poll_interval_(poll_interval),
      thread_([this](std::stop_token stop) { Run(std::move(stop)); }) {}

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
        auto rows = c.Exec("SELECT bound FROM projection_checkpoints WHERE name = $1",
                           infra::pg::Params().Add(name_));
        if (rows.rows() == 1) tracker_.Reset(static_cast<std::uint64_t>(rows.Int64(0, 0)));
        polled_session = connection.Sessions();
        last_poll = now;
      }
      for (const auto& notification : c.WaitForNotifications(kStep)) {
        if (auto bound = BoundOf(notification.payload, name_)) tracker_.Publish(*bound);
      }
    } catch (const std::exception& error) {
      spdlog::warn("progress listener: {}", error.what());
      connection.Reset();
      for (int i = 0; i < 10 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(kStep);
    }
  }
}

}  // namespace shopcqrs::adapters::pg_read
