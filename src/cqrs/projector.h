#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cqrs/envelope.h"

// The projector runtime: a loop on its own thread that fetches events from an EventSource in
// commit-consistent order, applies them to a ProjectionStore together with the checkpoint,
// and publishes progress (the applied commit bound) to a ProgressTracker so queries can wait
// for a consistency token. Standard library only: metrics and logging plug in through
// ProjectorObserver.
namespace shopcqrs::cqrs {

using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

// Where a projection stands in the event log.
//   (xid, position): the last event applied, in (transaction id, outbox position) order.
//   bound: every transaction with an xid below it is applied (what consistency tokens name).
struct Checkpoint {
  std::uint64_t xid = 0;
  std::int64_t position = 0;
  std::uint64_t bound = 0;
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

struct StoredEvent {
  EventEnvelope envelope;
  std::uint64_t xid = 0;
  std::int64_t position = 0;
  TimePoint committed_at{};  // commit-ish time (when the event was recorded)
};

struct EventBatch {
  std::vector<StoredEvent> events;  // in commit-consistent (xid, position) order
  Checkpoint next;                  // the checkpoint after applying `events`
};

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

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::uint64_t bound_ = 0;
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

 private:
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
};

}  // namespace shopcqrs::cqrs
