#include "cqrs/projector.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <exception>

namespace shopcqrs::cqrs {

namespace {

TimePoint NowMs() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

}  // namespace

void ProgressTracker::Reset(std::uint64_t bound) {
  {
    std::lock_guard lock(mutex_);
    bound_ = bound;
  }
  changed_.notify_all();
}

void ProgressTracker::Publish(std::uint64_t bound) {
  {
    std::lock_guard lock(mutex_);
    if (bound <= bound_) return;
    bound_ = bound;
  }
  changed_.notify_all();
}

std::uint64_t ProgressTracker::Bound() const {
  std::lock_guard lock(mutex_);
  return bound_;
}

bool ProgressTracker::WaitFor(std::uint64_t bound, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return bound_ >= bound; });
}

std::string_view ToString(ProjectorStatus status) {
  // Indexed by the status.
  constexpr std::array<std::string_view, 6> kNames = {"starting", "running", "catching_up",
                                                      "stalled",  "error",   "stopped"};
  static_assert(static_cast<std::size_t>(ProjectorStatus::kStopped) + 1 == kNames.size(),
                "every projector status has a name");
  const auto index = static_cast<std::size_t>(status);
  return index < kNames.size() ? kNames[index] : "unknown";
}

Projector::Projector(Options options, EventSource& source, ProjectionStore& store,
                     ProgressTracker* tracker, ProjectorObserver* observer)
    : options_(std::move(options)),
      source_(source),
      store_(store),
      tracker_(tracker),
      observer_(observer) {}

Projector::~Projector() { Stop(); }

void Projector::Start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  stats_.status = ProjectorStatus::kStarting;
  thread_ = std::thread([this] { Run(); });
}

void Projector::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_requested_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  if (stats_.status != ProjectorStatus::kError) stats_.status = ProjectorStatus::kStopped;
}

ProjectorStats Projector::Stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Projector::SetStatus(ProjectorStatus status, std::string error) {
  std::lock_guard lock(mutex_);
  stats_.status = status;
  stats_.last_error = std::move(error);
}

void Projector::Beat() {
  std::lock_guard lock(mutex_);
  stats_.heartbeat = NowMs();
}

bool Projector::SleepUnlessStopped(std::chrono::microseconds duration) {
  std::unique_lock lock(mutex_);
  return !stop_requested_.wait_for(lock, duration, [&] { return stop_; });
}

bool Projector::Step(Checkpoint& checkpoint) {
  const std::size_t max_size =
      std::max(options_.batch_size,
               options_.max_batch_size ? options_.max_batch_size : 8 * options_.batch_size);
  if (fetch_size_ == 0) fetch_size_ = options_.batch_size;
  EventBatch batch;
  std::size_t requested = fetch_size_;
  if (prefetch_.valid() && prefetch_after_ == checkpoint) {
    requested = prefetch_size_;
    batch = prefetch_.get();  // rethrows the fetch's fault
  } else {
    DropPrefetch();
    batch = source_.FetchBatch(checkpoint, requested);
  }
  batch.next.bound = std::max(batch.next.bound, checkpoint.bound);
  if (batch.events.empty() && batch.next == checkpoint) {
    NoteCaughtUp();
    return false;
  }
  const bool full = batch.events.size() >= requested;
  // Catching up: grow the batches and fetch the next one while this one is applied. The
  // prefetch starts from batch.next and is used only if this Apply succeeds (checkpoint then
  // equals batch.next); after a fault it is dropped and the checkpoint reloaded, so nothing is
  // skipped or applied twice. FetchBatch is never called concurrently with itself.
  fetch_size_ = full ? std::min(max_size, requested * 2) : options_.batch_size;
  if (full) {
    prefetch_after_ = batch.next;
    prefetch_size_ = fetch_size_;
    prefetch_ = std::async(std::launch::async, [this, after = batch.next, size = fetch_size_] {
      auto next = source_.FetchBatch(after, size);
      store_.Prepare(next.events);
      return next;
    });
  }
  store_.Apply(checkpoint, batch.events, batch.next);
  last_batch_events_ = batch.events.size();
  checkpoint = batch.next;
  source_.Acknowledge(checkpoint);

  const auto now = NowMs();
  std::chrono::milliseconds lag{0};
  if (observer_) {
    for (const auto& event : batch.events) {
      observer_->OnEventApplied(options_.name, event,
                                std::chrono::duration<double>(now - event.committed_at));
    }
  }
  if (!batch.events.empty()) lag = now - batch.events.back().committed_at;
  {
    std::lock_guard lock(mutex_);
    stats_.checkpoint = checkpoint;
    if (!batch.events.empty()) {
      stats_.events_applied += batch.events.size();
      ++stats_.batches;
      stats_.last_applied_at = now;
      stats_.last_lag = lag;
    }
  }
  if (tracker_) tracker_->Publish(checkpoint.bound);
  if (observer_) observer_->OnProgress(options_.name, checkpoint);
  if (full) {
    caught_up_ = false;
  } else {
    NoteCaughtUp();
  }
  return full;
}

void Projector::NoteCaughtUp() {
  if (caught_up_) return;
  store_.CaughtUp();
  caught_up_ = true;
}

void Projector::DropPrefetch() {
  if (!prefetch_.valid()) return;
  try {
    prefetch_.get();
  } catch (...) {
  }
}

void Projector::Run() {
  auto backoff = options_.initial_backoff;
  bool loaded = false;
  Checkpoint checkpoint;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stop_) break;
    }
    Beat();
    try {
      if (!loaded) {
        // (Re)load after a start or a fault: a commit whose answer was lost may have moved it.
        checkpoint = store_.LoadCheckpoint();
        loaded = true;
        {
          std::lock_guard lock(mutex_);
          stats_.checkpoint = checkpoint;
        }
        if (tracker_) tracker_->Reset(checkpoint.bound);
      }
      const bool more = Step(checkpoint);
      SetStatus(more ? ProjectorStatus::kCatchingUp : ProjectorStatus::kRunning);
      backoff = options_.initial_backoff;
      if (!more && source_.WaitForChange(options_.idle_wait) && last_batch_events_ > 1 &&
          options_.linger.count() > 0) {
        // Under load: let the next batch gather events (see Options::linger).
        if (!SleepUnlessStopped(options_.linger)) break;
      }
    } catch (const FatalProjectionError& error) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.errors;
        stats_.status = ProjectorStatus::kError;
        stats_.last_error = error.what();
      }
      if (observer_) observer_->OnError(options_.name, error.what(), true);
      DropPrefetch();
      return;  // loudly stopped: never skip past an event that cannot be applied
    } catch (const std::exception& error) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.errors;
        stats_.status = ProjectorStatus::kStalled;
        stats_.last_error = error.what();
      }
      if (observer_) observer_->OnError(options_.name, error.what(), false);
      loaded = false;
      DropPrefetch();
      fetch_size_ = options_.batch_size;
      try {
        source_.Reset();
        store_.Reset();
      } catch (...) {
      }
      if (!SleepUnlessStopped(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  DropPrefetch();
}

}  // namespace shopcqrs::cqrs
