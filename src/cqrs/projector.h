#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cqrs/dead_letters.h"
#include "cqrs/stored_event.h"

// The projector runtime: a loop on its own thread that fetches events from an EventSource in
// commit-consistent order, applies them to a ProjectionStore together with the checkpoint,
// and publishes progress (the applied commit bound) to a ProgressTracker so queries can wait
// for a consistency token. Standard library only: metrics and logging plug in through
// ProjectorObserver.
namespace shopcqrs::cqrs {

// Port: a gap-free, commit-consistent source of events (e.g. the write database's outbox).
// Implementations reconnect on their own; faults are thrown as exceptions.
class EventSource {
 public:
  virtual ~EventSource() = default;
  // Events after `after` (at most `max`). With no events, `next` may still carry a larger
  // bound (transactions finished without writing events).
  virtual EventBatch FetchBatch(const Checkpoint& after, std::size_t max) = 0;
  // Blocks until the source may have something new, or `timeout` passes. true: woken.
  virtual bool WaitForChange(std::chrono::milliseconds timeout) = 0;
  // The store committed everything up to `applied` (a batch's `next`): a source that must
  // confirm consumption (a broker's acks) may do so now. Never called for unapplied events.
  virtual void Acknowledge(const Checkpoint& /*applied*/) {}
  // Drops connections after a fault; the next call opens new ones.
  virtual void Reset() {}
};

// Port: the read store a projection writes to.
class ProjectionStore {
 public:
  virtual ~ProjectionStore() = default;
  // The stored checkpoint (all zero for a fresh store).
  virtual Checkpoint LoadCheckpoint() = 0;
  // Applies `events` and stores `to` in one read-store transaction, as a compare-and-set: the
  // batch commits only if the stored checkpoint is still `from` (the one the batch starts from);
  // otherwise nothing is written and a retryable error is thrown, so no path can move past an
  // event it did not apply. Idempotent per event (a redelivered event has no second effect).
  // May be called with no events to store a moved bound.
  virtual void Apply(const Checkpoint& from, const std::vector<StoredEvent>& events,
                     const Checkpoint& to) = 0;
  virtual void Reset() {}
  // The projector has applied everything its source had (a batch came back short of the fetch,
  // or empty), for the first time since it started or since a full batch: work a store deferred
  // while catching up can be done now. A throw is a fault like any other (retried).
  virtual void CaughtUp() {}
  // The projector's prefetch thread hands over the batch it fetched ahead, while the previous one
  // is being applied: pure work on it (decoding) can start now. Apply gets the same events later,
  // or never (after a fault). Must not throw; runs concurrently with Apply.
  virtual void Prepare(const std::vector<StoredEvent>& /*events*/) {}

  // ---- Sequenced dead letters (dead_letters.h). A store that keeps none keeps the defaults: it
  // parks nothing, and a poison event stops its projector (kError). ----
  // Whether the store can park events (ApplyWithDeadLetters accepts changes).
  virtual bool KeepsDeadLetters() const { return false; }
  // Apply, and in the same transaction the dead-letter `changes`. The events of a released
  // aggregate may lie before `from` (a retry re-applies them; `to` is then `from`).
  virtual void ApplyWithDeadLetters(const Checkpoint& from, const std::vector<StoredEvent>& events,
                                    const Checkpoint& to, const DeadLetterChanges& changes);
  // The parked aggregates, the parked events of one (in log order), the skip list.
  virtual std::vector<DeadLetter> LoadDeadLetters() { return {}; }
  virtual std::vector<StoredEvent> LoadParkedEvents(const AggregateKey& /*aggregate*/) {
    return {};
  }
  virtual std::vector<SkipRecord> LoadSkips() { return {}; }
  // The read rows `event` would change (ParkedEvent::keys); by default its aggregate's key
  // ("order:<id>" for an Order).
  virtual std::vector<std::string> Footprint(const StoredEvent& event);
};

// An error no retry can cure (e.g. an aggregate version gap): the projector stops and reports
// status kError instead of retrying.
class FatalProjectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The applied commit bound of one projection, shared between the projector (or a listener
// that follows a projector in another process) and the queries that wait for tokens.
class ProgressTracker {
 public:
  enum class WaitResult { kReady, kBehind, kParked };
  // Raises the bound (a smaller value is ignored) and wakes waiters.
  void Publish(std::uint64_t bound);
  // Sets the bound to what the store holds, even if lower: a projector that reloads its
  // checkpoint after a fault (the read server may have lost a suffix of batches, together
  // with their checkpoint, if it commits asynchronously) makes waiting queries wait again.
  void Reset(std::uint64_t bound);
  std::uint64_t Bound() const;
  // true once Bound() >= bound; false if `timeout` passes first. Blocks on a condition
  // variable; no polling.
  bool WaitFor(std::uint64_t bound, std::chrono::milliseconds timeout) const;

  // The projection's parked events (null: none). Set before a bound past them is published, so a
  // query never sees the bound without them.
  void SetParked(std::shared_ptr<const ParkedIndex> parked);
  std::shared_ptr<const ParkedIndex> Parked() const;
  // WaitFor, and then also until no parked event below `bound` touches the rows `keys` names
  // (ParkedIndex::Blocks): kReady; kBehind when the bound was not reached in time, kParked when
  // it was but parked events block the answer.
  WaitResult WaitUnparked(std::uint64_t bound, std::span<const std::string> keys,
                          std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::uint64_t bound_ = 0;
  std::shared_ptr<const ParkedIndex> parked_;
};

enum class ProjectorStatus { kStarting, kRunning, kCatchingUp, kStalled, kError, kStopped };
// "starting", "running", "catching_up", "stalled", "error", "stopped"
std::string_view ToString(ProjectorStatus status);

struct ProjectorStats {
  ProjectorStatus status = ProjectorStatus::kStopped;
  std::string last_error;  // empty when the last iteration succeeded
  std::uint64_t events_applied = 0;
  std::uint64_t batches = 0;
  std::uint64_t errors = 0;
  Checkpoint checkpoint;
  TimePoint heartbeat{};                  // the loop's last turn
  TimePoint last_applied_at{};            // when the last non-empty batch was applied
  std::chrono::milliseconds last_lag{0};  // commit to applied, of the last event applied
  std::int64_t dead_letters = 0;          // parked events
  std::int64_t parked_aggregates = 0;
};

// Hooks for metrics and logging (all no-ops by default). Called on the projector's thread.
class ProjectorObserver {
 public:
  virtual ~ProjectorObserver() = default;
  // Once per applied event: commit-to-applied lag.
  virtual void OnEventApplied(std::string_view /*projection*/, const StoredEvent& /*event*/,
                              std::chrono::duration<double> /*lag*/) {}
  virtual void OnProgress(std::string_view /*projection*/, const Checkpoint& /*checkpoint*/) {}
  virtual void OnError(std::string_view /*projection*/, std::string_view /*what*/, bool /*fatal*/) {
  }
  // An aggregate was parked (its first event), or released by a retry or skip.
  virtual void OnParked(std::string_view /*projection*/, const DeadLetter& /*letter*/) {}
  virtual void OnReleased(std::string_view /*projection*/, const AggregateKey& /*aggregate*/,
                          bool /*skipped*/, std::string_view /*by*/) {}
};

class Projector {
 public:
  struct Options {
    std::string name = "projection";
    std::size_t batch_size = 2000;
    // Catch-up: while batches come back full, the next one asks for twice as many events, up
    // to this many (0: 8 x batch_size), and is fetched while the previous one is applied.
    // Fewer, larger read-store transactions; back to batch_size once caught up.
    std::size_t max_batch_size = 0;
    std::chrono::milliseconds idle_wait{500};  // WaitForChange timeout when caught up
    // Group commit of live batches: after a batch of several events (the events come faster
    // than one batch transaction takes), the next wake-up waits this long before fetching, so
    // that a store transaction, its checkpoint and its flush carry several events instead of one
    // or two. A batch of one event (a quiet stream) never waits. 0: never.
    std::chrono::microseconds linger{1000};
    std::chrono::milliseconds initial_backoff{50};
    std::chrono::milliseconds max_backoff{2000};
    // An event whose apply fails deterministically this many times (each after the backoff) is
    // parked with its aggregate, if the store keeps dead letters.
    int poison_attempts = 3;
  };

  enum class Resolution { kRetry, kSkip };
  struct ResolveResult {
    bool found = false;  // the aggregate was parked
    bool resolved = false;
    std::int64_t applied = 0;  // parked events applied
    std::int64_t skipped = 0;  // 1 for a skip
    std::string error;         // when not resolved: why (the aggregate stays parked)
  };

  // `tracker` and `observer` are optional and must outlive the projector.
  Projector(Options options, EventSource& source, ProjectionStore& store,
            ProgressTracker* tracker = nullptr, ProjectorObserver* observer = nullptr);
  ~Projector();  // Stop()
  Projector(const Projector&) = delete;
  Projector& operator=(const Projector&) = delete;

  void Start();  // starts the loop thread (no-op if running)
  void Stop();   // asks the loop to end and joins it; the store keeps the last checkpoint
  ProjectorStats Stats() const;
  const std::string& name() const { return options_.name; }
  // The parked aggregates, in the order of their first parked event.
  std::vector<DeadLetter> DeadLetters() const;
  // Asks the loop to retry (re-apply its parked events in order) or skip (set the first parked
  // event aside in the skip list, then retry the rest) the parked aggregate `aggregate_id`, on
  // behalf of `by`. The loop does it in one store transaction between two batches; the future
  // is ready once it is done (or failed: the aggregate then stays parked). Thread-safe.
  std::future<ResolveResult> Resolve(std::string aggregate_id, Resolution resolution,
                                     std::string by);

 private:
  struct ResolveRequest {
    std::string aggregate_id;
    Resolution resolution;
    std::string by;
    std::promise<ResolveResult> done;
  };
  // Applies a fetched batch: as a whole, leaving out (parking) the events of parked aggregates
  // and skipped events, or -- after a deterministic failure -- one event at a time, to find and
  // park the poison event.
  void ApplyBatch(Checkpoint& checkpoint, const EventBatch& batch);
  // One event of a batch applied alone (isolation), to the intermediate checkpoint `step`.
  void ApplyAlone(const Checkpoint& checkpoint, const StoredEvent& event, const Checkpoint& step);
  // Adds `event` to the events `changes` parks (why: `error`, for an aggregate's first).
  void Park(const StoredEvent& event, std::string error, DeadLetterChanges& changes);
  // The store committed `changes`: their parked events join the parked aggregates.
  void NoteParked(const DeadLetterChanges& changes);
  void CountParkedLocked();
  void LoadDeadLetters();
  void PublishParked();
  void ServeRequests(const Checkpoint& checkpoint);
  // After a fault: counted, reported, and the source and store reset (the checkpoint is reloaded).
  void Stall(const std::exception& error, std::chrono::milliseconds backoff);
  void Run();
  // One fetch + apply; answers whether the batch was full (more is waiting).
  bool Step(Checkpoint& checkpoint);
  // Calls store_.CaughtUp() unless it was called since the last full batch.
  void NoteCaughtUp();
  // Waits for a prefetched batch still in flight and forgets it (after a fault or on stop).
  void DropPrefetch();
  void SetStatus(ProjectorStatus status, std::string error = {});
  void Beat();
  // Sleeps up to `duration` unless Stop() is called; answers false when stopping.
  bool SleepUnlessStopped(std::chrono::microseconds duration);

  Options options_;
  EventSource& source_;
  ProjectionStore& store_;
  ProgressTracker* tracker_;
  ProjectorObserver* observer_;

  mutable std::mutex mutex_;  // guards stats_ and stop_
  std::condition_variable stop_requested_;
  bool stop_ = false;
  ProjectorStats stats_;
  std::thread thread_;
  // Loop thread only: the size of the next fetch, and the next batch being fetched (from
  // prefetch_after_) while the current one is applied.
  std::size_t fetch_size_ = 0;
  std::size_t last_batch_events_ = 0;
  std::future<EventBatch> prefetch_;
  Checkpoint prefetch_after_;
  std::size_t prefetch_size_ = 0;
  bool caught_up_ = false;  // ProjectionStore::CaughtUp was called since the last full batch
  // Dead letters: the parked aggregates (guarded by mutex_, written by the loop only), the
  // skipped positions and the deterministic failures of the event being isolated (loop only).
  std::map<AggregateKey, DeadLetter> parked_;
  std::set<std::int64_t> skipped_;
  std::vector<PassedVersion> passed_;  // the skipped events' versions
  std::map<std::int64_t, int> failures_;
  bool isolate_ = false;                 // the next batch is applied one event at a time
  std::deque<ResolveRequest> requests_;  // guarded by mutex_
};

}  // namespace shopcqrs::cqrs
