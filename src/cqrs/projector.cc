#include "cqrs/projector.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <exception>
#include <utility>

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

void ProgressTracker::SetParked(std::shared_ptr<const ParkedIndex> parked) {
  {
    std::lock_guard lock(mutex_);
    parked_ = std::move(parked);
  }
  changed_.notify_all();
}

std::shared_ptr<const ParkedIndex> ProgressTracker::Parked() const {
  std::lock_guard lock(mutex_);
  return parked_;
}

ProgressTracker::WaitResult ProgressTracker::WaitUnparked(std::uint64_t bound,
                                                          std::span<const std::string> keys,
                                                          std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  auto blocked = [&] { return parked_ && parked_->Blocks(bound, keys); };
  if (changed_.wait_for(lock, timeout, [&] { return bound_ >= bound && !blocked(); })) {
    return WaitResult::kReady;
  }
  return bound_ < bound ? WaitResult::kBehind : WaitResult::kParked;
}

void ProjectionStore::ApplyWithDeadLetters(const Checkpoint& from,
                                           const std::vector<StoredEvent>& events,
                                           const Checkpoint& to, const DeadLetterChanges& changes) {
  if (!changes.empty()) throw FatalProjectionError("this projection's store keeps no dead letters");
  Apply(from, events, to);
}

std::vector<std::string> ProjectionStore::Footprint(const StoredEvent& event) {
  std::string kind = event.envelope.aggregate_type;
  for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return {kind + ":" + event.envelope.aggregate_id};
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
  ApplyBatch(checkpoint, batch);
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

namespace {

bool After(const StoredEvent& event, const Checkpoint& checkpoint) {
  return std::pair(event.xid, event.position) > std::pair(checkpoint.xid, checkpoint.position);
}

AggregateKey KeyOf(const StoredEvent& event) {
  return {event.envelope.aggregate_type, event.envelope.aggregate_id};
}

// A deterministic failure not yet retried often enough: retried like a fault of the store.
class RetryPoison : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

void Projector::ApplyBatch(Checkpoint& checkpoint, const EventBatch& batch) {
  if (!isolate_) {
    try {
      if (parked_.empty() && skipped_.empty()) {
        store_.Apply(checkpoint, batch.events, batch.next);
        return;
      }
      // Events of parked aggregates are parked behind their first; skipped events are left out.
      std::vector<StoredEvent> apply;
      DeadLetterChanges changes;
      changes.pass = passed_;
      for (const auto& event : batch.events) {
        if (skipped_.contains(event.position)) continue;
        if (parked_.contains(KeyOf(event))) {
          Park(event, {}, changes);
        } else {
          apply.push_back(event);
        }
      }
      if (changes.empty() && apply.size() == batch.events.size()) {
        store_.Apply(checkpoint, batch.events, batch.next);
      } else {
        store_.ApplyWithDeadLetters(checkpoint, apply, batch.next, changes);
      }
      NoteParked(changes);
      PublishParked();
      return;
    } catch (const DeterministicApplyError&) {
      if (!store_.KeepsDeadLetters()) throw;
      isolate_ = true;
    }
  }
  // Isolation: each event alone, to an intermediate checkpoint (its own position, the batch's
  // starting bound), so a deterministic failure names its event; then the bound moves on.
  Checkpoint at = checkpoint;
  for (const auto& event : batch.events) {
    if (!After(event, at)) continue;
    const Checkpoint step{event.xid, event.position, at.bound};
    ApplyAlone(at, event, step);
    at = step;
    std::lock_guard lock(mutex_);
    stats_.checkpoint = at;
  }
  store_.Apply(at, {}, batch.next);
  isolate_ = false;
}

void Projector::ApplyAlone(const Checkpoint& checkpoint, const StoredEvent& event,
                           const Checkpoint& step) {
  DeadLetterChanges changes;
  changes.pass = passed_;
  if (skipped_.contains(event.position)) {
    // Left out: the checkpoint moves past it.
  } else if (parked_.contains(KeyOf(event))) {
    Park(event, {}, changes);
  } else {
    try {
      store_.ApplyWithDeadLetters(checkpoint, {event}, step, changes);
      failures_.erase(event.position);
      return;
    } catch (const DeterministicApplyError& error) {
      const int failures = ++failures_[event.position];
      if (failures < options_.poison_attempts) {
        throw RetryPoison("attempt " + std::to_string(failures) + " of " +
                          std::to_string(options_.poison_attempts) + ": " + error.what());
      }
      failures_.erase(event.position);
      Park(event, error.what(), changes);
    }
  }
  store_.ApplyWithDeadLetters(checkpoint, {}, step, changes);
  NoteParked(changes);
  PublishParked();
}

void Projector::Park(const StoredEvent& event, std::string error, DeadLetterChanges& changes) {
  changes.park.push_back(ParkedEvent{event, std::move(error), store_.Footprint(event)});
}

void Projector::NoteParked(const DeadLetterChanges& changes) {
  if (changes.park.empty()) return;
  std::vector<DeadLetter> first_ones;
  {
    std::lock_guard lock(mutex_);
    for (const auto& parked : changes.park) {
      const auto& event = parked.event;
      auto [it, first] = parked_.try_emplace(KeyOf(event));
      auto& letter = it->second;
      if (first) {
        letter.aggregate = KeyOf(event);
        letter.first_position = event.position;
        letter.first_xid = event.xid;
        letter.error = parked.error;
        letter.parked_at = std::chrono::time_point_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now());
      }
      ++letter.events;
      for (const auto& k : parked.keys) {
        if (std::ranges::find(letter.keys, k) == letter.keys.end()) letter.keys.push_back(k);
      }
      if (first) first_ones.push_back(letter);
    }
    CountParkedLocked();
  }
  if (observer_) {
    for (const auto& letter : first_ones) observer_->OnParked(options_.name, letter);
  }
}

void Projector::CountParkedLocked() {
  stats_.dead_letters = 0;
  for (const auto& [_, l] : parked_) stats_.dead_letters += l.events;
  stats_.parked_aggregates = static_cast<std::int64_t>(parked_.size());
}

void Projector::LoadDeadLetters() {
  std::map<AggregateKey, DeadLetter> parked;
  if (store_.KeepsDeadLetters()) {
    for (auto& letter : store_.LoadDeadLetters()) {
      auto key = letter.aggregate;
      parked.emplace(std::move(key), std::move(letter));
    }
    skipped_.clear();
    passed_.clear();
    for (const auto& skip : store_.LoadSkips()) {
      skipped_.insert(skip.position);
      passed_.push_back({skip.aggregate, skip.aggregate_version});
    }
  }
  std::lock_guard lock(mutex_);
  parked_ = std::move(parked);
  CountParkedLocked();
}

void Projector::PublishParked() {
  if (!tracker_) return;
  std::shared_ptr<const ParkedIndex> index;
  {
    std::lock_guard lock(mutex_);
    if (!parked_.empty()) {
      std::vector<DeadLetter> letters;
      for (const auto& [_, l] : parked_) letters.push_back(l);
      index = std::make_shared<const ParkedIndex>(letters);
    }
  }
  tracker_->SetParked(std::move(index));
}

std::vector<DeadLetter> Projector::DeadLetters() const {
  std::vector<DeadLetter> letters;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [_, l] : parked_) letters.push_back(l);
  }
  std::ranges::sort(letters, {}, &DeadLetter::first_position);
  return letters;
}

std::future<Projector::ResolveResult> Projector::Resolve(std::string aggregate_id,
                                                         Resolution resolution, std::string by) {
  ResolveRequest request{std::move(aggregate_id), resolution, std::move(by), {}};
  auto done = request.done.get_future();
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(std::move(request));
  }
  stop_requested_.notify_all();  // a lingering loop turns at once
  return done;
}

void Projector::ServeRequests(const Checkpoint& checkpoint) {
  while (true) {
    ResolveRequest request;
    std::optional<AggregateKey> key;
    {
      std::lock_guard lock(mutex_);
      if (requests_.empty()) return;
      request = std::move(requests_.front());
      requests_.pop_front();
      for (const auto& [k, _] : parked_) {
        if (k.id == request.aggregate_id) key = k;
      }
    }
    ResolveResult result;
    if (!key) {
      request.done.set_value(result);
      continue;
    }
    result.found = true;
    try {
      auto events = store_.LoadParkedEvents(*key);
      DeadLetterChanges changes;
      changes.release = *key;
      changes.pass = passed_;
      const bool skip = request.resolution == Resolution::kSkip && !events.empty();
      if (skip) {
        const auto& first = events.front();
        changes.skip = SkipRecord{first.position,
                                  first.xid,
                                  first.envelope.event_id,
                                  *key,
                                  first.envelope.aggregate_version,
                                  request.by,
                                  std::chrono::time_point_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now())};
        changes.pass.push_back({*key, first.envelope.aggregate_version});
        events.erase(events.begin());
      }
      store_.ApplyWithDeadLetters(checkpoint, events, checkpoint, changes);
      if (skip) {
        skipped_.insert(changes.skip->position);
        passed_.push_back({*key, changes.skip->aggregate_version});
      }
      {
        std::lock_guard lock(mutex_);
        parked_.erase(*key);
        CountParkedLocked();
      }
      PublishParked();
      if (observer_) observer_->OnReleased(options_.name, *key, skip, request.by);
      result.resolved = true;
      result.applied = static_cast<std::int64_t>(events.size());
      result.skipped = skip ? 1 : 0;
      request.done.set_value(result);
    } catch (const DeterministicApplyError& error) {
      result.error = error.what();  // still failing: stays parked
      request.done.set_value(result);
    } catch (const std::exception& error) {
      result.error = std::string("the store is unavailable: ") + error.what();
      request.done.set_value(result);
      throw;
    }
  }
}

void Projector::Stall(const std::exception& error, std::chrono::milliseconds) {
  {
    std::lock_guard lock(mutex_);
    ++stats_.errors;
    stats_.status = ProjectorStatus::kStalled;
    stats_.last_error = error.what();
  }
  if (observer_) observer_->OnError(options_.name, error.what(), false);
  DropPrefetch();
  fetch_size_ = options_.batch_size;
  try {
    source_.Reset();
    store_.Reset();
  } catch (...) {
  }
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
        LoadDeadLetters();
        PublishParked();  // before the bound, which may lie past parked events
        if (tracker_) tracker_->Reset(checkpoint.bound);
      }
      ServeRequests(checkpoint);
      const bool more = Step(checkpoint);
      SetStatus(more ? ProjectorStatus::kCatchingUp : ProjectorStatus::kRunning);
      backoff = options_.initial_backoff;
      if (!more && source_.WaitForChange(options_.idle_wait) && last_batch_events_ > 1 &&
          options_.linger.count() > 0) {
        // Under load: let the next batch gather events (see Options::linger).
        if (!SleepUnlessStopped(options_.linger)) break;
      }
    } catch (const std::exception& error) {
      if (!dynamic_cast<const FatalProjectionError*>(&error) &&
          !dynamic_cast<const DeterministicApplyError*>(&error)) {
        Stall(error, backoff);
        loaded = false;
        if (!SleepUnlessStopped(backoff)) break;
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      // A store that keeps no dead letters cannot park a poison event either.
      {
        std::lock_guard lock(mutex_);
        ++stats_.errors;
        stats_.status = ProjectorStatus::kError;
        stats_.last_error = error.what();
      }
      if (observer_) observer_->OnError(options_.name, error.what(), true);
      DropPrefetch();
      return;  // loudly stopped: never skip past an event that cannot be applied
    }
  }
  DropPrefetch();
}

}  // namespace shopcqrs::cqrs
