// The projector runtime with in-memory sources and stores: what it fetches, applies and
// acknowledges, and when.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "cqrs/projector.h"

namespace shopcqrs::cqrs {

// Readable checkpoints in failure messages (found by argument-dependent lookup).
static void PrintTo(const Checkpoint& c, std::ostream* os) {
  *os << "{xid " << c.xid << ", position " << c.position << ", bound " << c.bound << "}";
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

StoredEvent Event(std::uint64_t xid, std::int64_t position) {
  StoredEvent event;
  event.xid = xid;
  event.position = position;
  event.envelope.event_id = std::to_string(position);
  event.envelope.type = "Test";
  return event;
}

std::vector<std::int64_t> Positions(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> positions;
  for (auto p = first; p <= last; ++p) positions.push_back(p);
  return positions;
}

// Options of a projector for these tests: batches of `batch` events (growing up to `max_batch`;
// 0: 8 x batch), 1 ms idle waits and back-offs.
Projector::Options Fast(std::size_t batch, std::size_t max_batch = 0) {
  return {.name = "t",
          .batch_size = batch,
          .max_batch_size = max_batch,
          .idle_wait = 1ms,
          .initial_backoff = 1ms};
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Bounded polling for state that has no condition variable of its own (Projector::Stats).
template <typename Predicate>
bool Eventually(Predicate done, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A copy of `value` taken under `mutex`: what the fakes' accessors answer the test thread.
template <class T>
T Locked(std::mutex& mutex, const T& value) {
  std::lock_guard lock(mutex);
  return value;
}

struct FetchCall {
  Checkpoint after;
  std::size_t max = 0;
  std::size_t returned = 0;  // events in the answer
};

// A log of events with xid = 10 * position; every fetch bound is the last xid + 1. Records
// every answered FetchBatch (in order: the projector never fetches concurrently) and every
// Acknowledge. Hooks are set before the projector starts.
class MemorySource final : public EventSource {
 public:
  // Runs at the start of each FetchBatch (call counts from 1), outside the lock; may throw.
  using FetchHook = std::function<void(int call, const Checkpoint& after, std::size_t max)>;
  using AckHook = std::function<void(const Checkpoint& applied)>;

  explicit MemorySource(int events) { Append(events); }

  void OnFetch(FetchHook hook) { on_fetch_ = std::move(hook); }
  void OnAcknowledge(AckHook hook) { on_ack_ = std::move(hook); }

  // Commits `events` more events after the last one.
  void Append(int events) {
    {
      std::lock_guard lock(mutex_);
      for (int i = 0; i < events; ++i) {
        const auto position = static_cast<std::int64_t>(log_.size()) + 1;
        log_.push_back(Event(10u * position, position));
      }
    }
    changed_.notify_all();
  }

  EventBatch FetchBatch(const Checkpoint& after, std::size_t max) override {
    if (in_flight_.fetch_add(1) != 0) overlapped_ = true;
    struct Leave {
      std::atomic<int>& n;
      ~Leave() { --n; }
    } leave{in_flight_};
    int call = 0;
    {
      std::lock_guard lock(mutex_);
      call = ++fetch_calls_;
    }
    if (on_fetch_) on_fetch_(call, after, max);
    EventBatch batch;
    {
      std::lock_guard lock(mutex_);
      batch.next = after;
      for (const auto& e : log_) {
        if (batch.events.size() >= max) break;
        if (e.position > after.position) batch.events.push_back(e);
      }
      if (!batch.events.empty()) {
        batch.next.xid = batch.events.back().xid;
        batch.next.position = batch.events.back().position;
        batch.next.bound = batch.next.xid + 1;
      }
      fetches_.push_back({after, max, batch.events.size()});
    }
    changed_.notify_all();
    return batch;
  }
  bool WaitForChange(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(std::min(timeout, 5ms));
    return false;
  }
  void Acknowledge(const Checkpoint& applied) override {
    if (on_ack_) on_ack_(applied);
    std::lock_guard lock(mutex_);
    acks_.push_back(applied);
  }

  std::vector<Checkpoint> Acks() { return Locked(mutex_, acks_); }
  std::vector<FetchCall> Fetches() { return Locked(mutex_, fetches_); }
  // Blocks until `done(fetches so far)` holds or `timeout` passes.
  bool WaitForFetches(const std::function<bool(const std::vector<FetchCall>&)>& done,
                      std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return done(fetches_); });
  }
  bool Overlapped() const { return overlapped_; }

 private:
  FetchHook on_fetch_;
  AckHook on_ack_;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> overlapped_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  int fetch_calls_ = 0;
  std::vector<StoredEvent> log_;
  std::vector<FetchCall> fetches_;
  std::vector<Checkpoint> acks_;
};

struct ApplyCall {
  Checkpoint from;
  Checkpoint to;
  std::size_t events = 0;
  bool returned = false;  // false: Apply threw
  Clock::time_point at;   // when the call began
};

// Stores checkpoints as a compare-and-set; fails the n-th Apply once. Records every Apply
// call, every LoadCheckpoint answer, and every event ever committed (History, which keeps
// batches the store later "lost"; Applied is what it holds now).
class MemoryStore final : public ProjectionStore {
 public:
  // Runs in each Apply (call counts from 1) before anything is written, outside the lock; may
  // block or throw.
  using ApplyHook =
      std::function<void(int call, const Checkpoint& from, const std::vector<StoredEvent>& events,
                         const Checkpoint& to)>;

  explicit MemoryStore(int fail_on_call = 0) : fail_on_call_(fail_on_call) {}

  void BeforeApply(ApplyHook hook) { before_apply_ = std::move(hook); }
  // The n-th Apply commits, then throws (the answer to the commit was lost).
  void ThrowAfterCommitOnCall(int call) { throw_after_commit_on_call_ = call; }

  Checkpoint LoadCheckpoint() override {
    std::lock_guard lock(mutex_);
    loads_.push_back(checkpoint_);
    return checkpoint_;
  }
  // The number of events applied at each CaughtUp call.
  std::vector<std::size_t> CaughtUpAt() {
    std::lock_guard lock(mutex_);
    return caught_up_at_;
  }
  void CaughtUp() override {
    std::lock_guard lock(mutex_);
    caught_up_at_.push_back(applied_.size());
  }
  // The positions of every batch handed to Prepare, and of every batch Apply committed.
  std::vector<std::vector<std::int64_t>> Prepared() {
    std::lock_guard lock(mutex_);
    return prepared_;
  }
  std::vector<std::vector<std::int64_t>> Batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  void Prepare(const std::vector<StoredEvent>& events) override {
    std::vector<std::int64_t> positions;
    for (const auto& e : events) positions.push_back(e.position);
    std::lock_guard lock(mutex_);
    prepared_.push_back(std::move(positions));
  }
  void Apply(const Checkpoint& from, const std::vector<StoredEvent>& events,
             const Checkpoint& checkpoint) override {
    ApplyCall record{from, checkpoint, events.size(), false, Clock::now()};
    int call = 0;
    {
      std::lock_guard lock(mutex_);
      call = ++calls_;
    }
    try {
      if (call == fail_on_call_) throw std::runtime_error("store fault");
      if (before_apply_) before_apply_(call, from, events, checkpoint);
      std::lock_guard lock(mutex_);
      if (!(from == checkpoint_)) throw std::runtime_error("checkpoint moved");
      undo_checkpoint_ = checkpoint_;
      undo_size_ = applied_.size();
      for (const auto& e : events) {
        applied_.push_back(e.position);
        history_.push_back(e.position);
      }
      checkpoint_ = checkpoint;
      batches_.emplace_back();
      for (const auto& e : events) batches_.back().push_back(e.position);
      if (call == throw_after_commit_on_call_) throw std::runtime_error("commit answer lost");
    } catch (...) {
      Record(record);
      throw;
    }
    record.returned = true;
    Record(record);
  }
  // Forgets the last committed batch with its checkpoint (an asynchronously committing read
  // server that crashed).
  void LoseLastBatch() {
    std::lock_guard lock(mutex_);
    checkpoint_ = undo_checkpoint_;
    applied_.resize(undo_size_);
  }

  Checkpoint Stored() { return Locked(mutex_, checkpoint_); }
  std::vector<std::int64_t> Applied() { return Locked(mutex_, applied_); }
  std::vector<std::int64_t> History() { return Locked(mutex_, history_); }
  std::vector<ApplyCall> Calls() { return Locked(mutex_, log_); }
  std::vector<Checkpoint> Loads() { return Locked(mutex_, loads_); }
  // Blocks until `n` Apply calls have finished or `timeout` passes.
  bool WaitForCalls(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return log_.size() >= n; });
  }

 private:
  void Record(const ApplyCall& record) {
    {
      std::lock_guard lock(mutex_);
      log_.push_back(record);
    }
    changed_.notify_all();
  }

  ApplyHook before_apply_;
  int throw_after_commit_on_call_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  int fail_on_call_;
  int calls_ = 0;
  Checkpoint checkpoint_;
  Checkpoint undo_checkpoint_;
  std::size_t undo_size_ = 0;
  std::vector<std::int64_t> applied_;
  std::vector<std::size_t> caught_up_at_;
  std::vector<std::vector<std::int64_t>> prepared_;
  std::vector<std::vector<std::int64_t>> batches_;
  std::vector<std::int64_t> history_;
  std::vector<ApplyCall> log_;
  std::vector<Checkpoint> loads_;
};

Checkpoint At(std::int64_t position) {
  return {10u * static_cast<std::uint64_t>(position), position,
          position ? 10u * static_cast<std::uint64_t>(position) + 1 : 0};
}

// For MemorySource::WaitForFetches: the last fetch so far asked for what follows `after`.
auto LastFetchAfter(const Checkpoint& after) {
  return [after](const std::vector<FetchCall>& f) { return !f.empty() && f.back().after == after; };
}

std::vector<std::int64_t> FetchedAfter(const std::vector<FetchCall>& fetches) {
  std::vector<std::int64_t> positions;
  for (const auto& f : fetches) positions.push_back(f.after.position);
  return positions;
}

// (from, to, returned) of each Apply call, by position.
std::vector<std::tuple<std::int64_t, std::int64_t, bool>> Transitions(
    const std::vector<ApplyCall>& calls) {
  std::vector<std::tuple<std::int64_t, std::int64_t, bool>> transitions;
  for (const auto& c : calls) transitions.emplace_back(c.from.position, c.to.position, c.returned);
  return transitions;
}

TEST(Projector, AcknowledgesEachCommittedBatchInOrderAndNeverAFailedOne) {
  MemorySource source(50);
  MemoryStore store(/*fail_on_call=*/2);
  ProgressTracker tracker;
  Projector projector({.name = "t", .batch_size = 10, .initial_backoff = 1ms}, source, store,
                      &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(501, 5s));
  projector.Stop();

  std::vector<std::int64_t> expected;
  for (int i = 1; i <= 50; ++i) expected.push_back(i);
  EXPECT_EQ(store.Applied(), expected);  // the failed batch was applied once, after the fault
  const auto acks = source.Acks();
  ASSERT_FALSE(acks.empty());
  for (std::size_t i = 1; i < acks.size(); ++i) {
    EXPECT_LT(acks[i - 1].position, acks[i].position);
  }
  EXPECT_EQ(acks.back(), (Checkpoint{500, 50, 501}));
  // Every acknowledged checkpoint was stored before it was acknowledged: the first ack follows
  // the first batch (positions 1..10), and none names a batch the failing call held.
  EXPECT_EQ(acks.front(), (Checkpoint{100, 10, 101}));
  EXPECT_EQ(projector.Stats().errors, 1u);
}

// While a full batch is applied, the next one is already being fetched from its `next`; that
// prefetch is used once the Apply succeeds, and dropped (refetched from the reloaded
// checkpoint) when it fails. A batch that is not full is not followed by a prefetch.
TEST(Projector, PrefetchesFromTheBatchNextDuringApplyAndUsesItOnlyAfterSuccess) {
  MemorySource source(22);
  MemoryStore store;
  ProgressTracker tracker;
  std::vector<bool> prefetched;  // per Apply call; written on the loop thread, read after Stop
  store.BeforeApply([&](int call, const Checkpoint& from, const std::vector<StoredEvent>& events,
                        const Checkpoint& to) {
    // The fetch that produced this batch is the last one from `from`; a prefetch follows it.
    auto next_fetch_issued = [&](const std::vector<FetchCall>& fetches) {
      std::size_t produced = fetches.size();
      for (std::size_t i = fetches.size(); i-- > 0;) {
        if (fetches[i].after == from) {
          produced = i;
          break;
        }
      }
      for (std::size_t i = produced + 1; i < fetches.size(); ++i) {
        if (fetches[i].after == to) return true;
      }
      return false;
    };
    // Full batch: block until the source has seen the next fetch (it must come before this
    // Apply returns). Not full: give a wrongly issued prefetch a moment to show up.
    const bool full = events.size() >= 5;
    prefetched.push_back(source.WaitForFetches(next_fetch_issued, full ? 2000ms : 30ms));
    if (call == 2) throw std::runtime_error("store fault");
  });
  Projector projector(Fast(5, 5), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(221, 5s));
  ASSERT_TRUE(source.WaitForFetches(LastFetchAfter(At(22)), 5s));
  projector.Stop();

  EXPECT_EQ(prefetched, (std::vector<bool>{true, true, true, true, true, false}));
  using T = std::tuple<std::int64_t, std::int64_t, bool>;
  EXPECT_EQ(Transitions(store.Calls()), (std::vector<T>{{0, 5, true},
                                                        {5, 10, false},  // prefetch from 10 dropped
                                                        {5, 10, true},
                                                        {10, 15, true},
                                                        {15, 20, true},
                                                        {20, 22, true}}));
  // Each batch is fetched once (the prefetch is used), except the one after the failed Apply:
  // its prefetch (from 10) was dropped and the batch refetched from the reloaded checkpoint 5.
  const auto fetches = source.Fetches();
  const auto after = FetchedAfter(fetches);
  ASSERT_GE(after.size(), 8u);
  EXPECT_EQ(std::vector<std::int64_t>(after.begin(), after.begin() + 8),
            (std::vector<std::int64_t>{0, 5, 10, 5, 10, 15, 20, 22}));
  for (std::size_t i = 8; i < after.size(); ++i) EXPECT_EQ(after[i], 22) << i;  // idle
  for (const auto& f : fetches) EXPECT_EQ(f.max, 5u);
  EXPECT_FALSE(source.Overlapped());
  EXPECT_EQ(store.Applied(), Positions(1, 22));
  EXPECT_EQ(store.Loads(), (std::vector<Checkpoint>{At(0), At(5)}));
  EXPECT_EQ(projector.Stats().errors, 1u);
}

// Fetch sizes: batch_size, 2x, 4x, 8x (max_batch_size 0), 8x ... while batches are full; the
// first batch that is not full brings them back to batch_size, and growth starts over.
TEST(Projector, DoublesFetchSizeWhileFullUpToEightTimesBatchSizeAndResetsWhenNotFull) {
  MemorySource source(95);  // 4 + 8 + 16 + 32 + 32 + 3
  MemoryStore store;
  ProgressTracker tracker;
  Projector projector(Fast(4), source, store, &tracker);
  auto idle_at = [](std::int64_t position) {
    return [position](const std::vector<FetchCall>& fetches) {
      return std::any_of(fetches.begin(), fetches.end(), [&](const FetchCall& f) {
        return f.after.position == position && f.returned == 0;
      });
    };
  };
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(951, 5s));
  ASSERT_TRUE(source.WaitForFetches(idle_at(95), 5s));
  source.Append(20);  // 4 + 8 + 8 (of 16)
  ASSERT_TRUE(tracker.WaitFor(1151, 5s));
  ASSERT_TRUE(source.WaitForFetches(idle_at(115), 5s));
  projector.Stop();

  using F = std::tuple<std::int64_t, std::size_t, std::size_t>;  // after, max, returned
  std::vector<F> answered;
  const auto fetches = source.Fetches();
  for (const auto& f : fetches) {
    if (f.returned > 0) answered.emplace_back(f.after.position, f.max, f.returned);
  }
  EXPECT_EQ(answered, (std::vector<F>{{0, 4, 4},
                                      {4, 8, 8},
                                      {12, 16, 16},
                                      {28, 32, 32},
                                      {60, 32, 32},  // capped at 8 x batch_size
                                      {92, 32, 3},   // not full
                                      {95, 4, 4},    // after idling at batch_size
                                      {99, 8, 8},
                                      {107, 16, 8}}));
  // Every fetch that found nothing (while caught up) asked for batch_size.
  for (const auto& f : fetches) {
    if (f.returned == 0) {
      EXPECT_EQ(f.max, 4u) << "empty fetch after " << f.after.position;
    }
  }
  EXPECT_EQ(store.Applied(), Positions(1, 115));
  EXPECT_EQ(projector.Stats().errors, 0u);
}

// CaughtUp comes once the source runs dry (a short or empty batch), once per catch-up: not
// again while idling, again after the next full batches.
TEST(Projector, CallsCaughtUpOnceAfterEachCatchUp) {
  MemorySource source(95);  // 4 + 8 + 16 + 32 + 32 + 3
  MemoryStore store;
  ProgressTracker tracker;
  Projector projector(Fast(4), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(951, 5s));
  ASSERT_TRUE(source.WaitForFetches(LastFetchAfter(At(95)), 5s));
  std::this_thread::sleep_for(50ms);  // idle fetches
  EXPECT_EQ(store.CaughtUpAt(), (std::vector<std::size_t>{95}));
  source.Append(2);  // short: caught up again without a full batch in between
  ASSERT_TRUE(tracker.WaitFor(971, 5s));
  source.Append(20);  // 4 + 8 + 8 (of 16)
  ASSERT_TRUE(tracker.WaitFor(1171, 5s));
  ASSERT_TRUE(source.WaitForFetches(LastFetchAfter(At(117)), 5s));
  projector.Stop();
  EXPECT_EQ(store.CaughtUpAt(), (std::vector<std::size_t>{95, 117}));
}

// Each prefetched batch is handed to Prepare before its Apply, with the same events.
TEST(Projector, PreparesEachPrefetchedBatchBeforeApplyingIt) {
  MemorySource source(95);  // 4 + 8 + 16 + 32 + 32 + 3: all but the first prefetched
  MemoryStore store;
  ProgressTracker tracker;
  Projector projector(Fast(4), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(951, 5s));
  projector.Stop();
  const auto batches = store.Batches();
  ASSERT_EQ(batches.size(), 6u);
  auto prepared = store.Prepared();
  // The prefetch after the last (short) batch found nothing.
  std::erase_if(prepared, [](const auto& positions) { return positions.empty(); });
  EXPECT_EQ(prepared, std::vector(batches.begin() + 1, batches.end()));
}

TEST(Projector, CapsFetchSizeGrowthAtMaxBatchSize) {
  MemorySource source(34);  // 3 + 6 + 10 + 10 + 5
  MemoryStore store;
  ProgressTracker tracker;
  Projector projector(Fast(3, 10), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(341, 5s));
  ASSERT_TRUE(source.WaitForFetches(LastFetchAfter(At(34)), 5s));
  projector.Stop();

  using F = std::tuple<std::int64_t, std::size_t, std::size_t>;  // after, max, returned
  std::vector<F> fetched;
  for (const auto& f : source.Fetches()) fetched.emplace_back(f.after.position, f.max, f.returned);
  ASSERT_GE(fetched.size(), 6u);
  EXPECT_EQ(
      std::vector<F>(fetched.begin(), fetched.begin() + 6),
      (std::vector<F>{{0, 3, 3}, {3, 6, 6}, {9, 10, 10}, {19, 10, 10}, {29, 10, 5}, {34, 3, 0}}));
  for (std::size_t i = 6; i < fetched.size(); ++i) EXPECT_EQ(fetched[i], F(34, 3, 0)) << i;
}

// Consecutive faults: the sleeps before the retries are initial_backoff, doubling, capped at
// max_backoff; a success brings them back to initial_backoff. Measured between the Apply
// calls (each retry reloads, refetches and applies again right after its sleep). Lower bounds
// are exact (a sleep is never shorter); upper bounds are loose, for a loaded machine.
TEST(Projector, BacksOffExponentiallyUpToMaxBackoffAndResetsAfterSuccess) {
  MemorySource source(6);
  MemoryStore store;
  ProgressTracker tracker;
  // Event 1 fails six times in a row; events 2..5 fail once each, right after a success.
  const std::set<int> failing{1, 2, 3, 4, 5, 6, 8, 10, 12, 14};
  store.BeforeApply(
      [&](int call, const Checkpoint&, const std::vector<StoredEvent>&, const Checkpoint&) {
        if (failing.contains(call)) throw std::runtime_error("transient");
      });
  Projector projector({.name = "t",
                       .batch_size = 1,
                       .max_batch_size = 1,
                       .idle_wait = 1ms,
                       .initial_backoff = 10ms,
                       .max_backoff = 80ms},
                      source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(61, 10s));
  projector.Stop();

  const auto calls = store.Calls();
  ASSERT_EQ(calls.size(), 16u);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].returned, !failing.contains(static_cast<int>(i) + 1)) << "call " << i + 1;
  }
  // Milliseconds from the failing call `call` (counted from 1) to its retry.
  auto gap = [&](int call) { return Ms(calls[call].at - calls[call - 1].at); };
  const double expected[] = {10, 20, 40, 80, 80, 80};
  for (int call = 1; call <= 6; ++call) {
    EXPECT_GE(gap(call), expected[call - 1] - 1) << "retry after fault " << call;
  }
  // Uncapped, the sixth sleep would be 320ms.
  EXPECT_LT(std::max({gap(4), gap(5), gap(6)}), 250) << "capped at max_backoff";
  // After each success the next fault sleeps initial_backoff again (not reset: >= 80ms).
  double shortest = 1e9;
  for (int call : {8, 10, 12, 14}) {
    EXPECT_GE(gap(call), 9) << "retry after fault on call " << call;
    shortest = std::min(shortest, gap(call));
  }
  EXPECT_LT(shortest, 50) << "backoff reset after success";
  EXPECT_EQ(store.Applied(), Positions(1, 6));
  EXPECT_EQ(projector.Stats().errors, failing.size());
}

// A FatalProjectionError from Apply stops the loop: status kError with the message, no retry,
// no further fetch or Apply, and nothing acknowledged or published for that batch.
TEST(Projector, FatalApplyErrorStopsWithoutRetryOrAcknowledgement) {
  MemorySource source(30);
  MemoryStore store;
  ProgressTracker tracker;
  store.BeforeApply(
      [&](int call, const Checkpoint&, const std::vector<StoredEvent>&, const Checkpoint&) {
        if (call == 2) throw FatalProjectionError("aggregate version gap");
      });
  Projector projector(Fast(10), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(Eventually([&] { return projector.Stats().status == ProjectorStatus::kError; }));
  // A retry (1ms back-off) would call Apply a third time well within this.
  EXPECT_FALSE(store.WaitForCalls(3, 100ms));
  projector.Stop();

  const auto stats = projector.Stats();
  EXPECT_EQ(stats.status, ProjectorStatus::kError);  // Stop() keeps it
  EXPECT_EQ(stats.last_error, "aggregate version gap");
  EXPECT_EQ(stats.errors, 1u);
  EXPECT_EQ(stats.checkpoint, At(10));
  using T = std::tuple<std::int64_t, std::int64_t, bool>;
  EXPECT_EQ(Transitions(store.Calls()), (std::vector<T>{{0, 10, true}, {10, 30, false}}));
  // The first batch (10) was full, so the second one (20) was prefetched, and was full too, so
  // the third (empty) was prefetched while it failed; nothing after that.
  EXPECT_EQ(FetchedAfter(source.Fetches()), (std::vector<std::int64_t>{0, 10, 30}));
  EXPECT_EQ(source.Acks(), (std::vector<Checkpoint>{At(10)}));
  EXPECT_EQ(store.Stored(), At(10));
  EXPECT_EQ(store.Applied(), Positions(1, 10));
  EXPECT_EQ(tracker.Bound(), 101u);
  EXPECT_EQ(store.Loads().size(), 1u);
}

// The store loses its last committed batch (and checkpoint) and faults: the projector reloads
// the older checkpoint, sets the tracker back to its bound (below what it had published), and
// applies the lost events once more, then the rest.
TEST(Projector, ResetsTrackerToReloadedCheckpointAfterStoreLosesABatch) {
  MemorySource source(30);
  MemoryStore store;
  ProgressTracker tracker;
  std::uint64_t bound_before_loss = 0;  // loop thread; read after Stop
  store.BeforeApply(
      [&](int call, const Checkpoint&, const std::vector<StoredEvent>&, const Checkpoint&) {
        if (call == 3) {
          bound_before_loss = tracker.Bound();
          store.LoseLastBatch();  // batch 11..20 with checkpoint 20
          throw std::runtime_error("read server restarted");
        }
      });
  std::mutex seen_mutex;
  std::vector<std::pair<std::int64_t, std::uint64_t>> seen;  // (fetch after, tracker bound)
  source.OnFetch([&](int, const Checkpoint& after, std::size_t) {
    std::lock_guard lock(seen_mutex);
    seen.emplace_back(after.position, tracker.Bound());
  });
  Projector projector(Fast(10, 10), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(301, 5s));
  projector.Stop();

  // Loaded at the start, and again after the fault: the store then held checkpoint 10.
  EXPECT_EQ(store.Loads(), (std::vector<Checkpoint>{At(0), At(10)}));
  std::vector<std::pair<std::int64_t, std::uint64_t>> fetches;
  {
    std::lock_guard lock(seen_mutex);
    fetches = seen;
  }
  ASSERT_GE(fetches.size(), 5u);
  // Fetches from 0, then prefetches during Apply 1, 2 and 3 (the last one dropped), then the
  // refetch from the reloaded checkpoint: the tracker was set back from 201 to its bound first.
  std::vector<std::int64_t> after;
  for (const auto& f : fetches) after.push_back(f.first);
  EXPECT_EQ(std::vector<std::int64_t>(after.begin(), after.begin() + 5),
            (std::vector<std::int64_t>{0, 10, 20, 30, 10}));
  EXPECT_EQ(bound_before_loss, 201u);
  EXPECT_EQ(fetches[4].second, 101u) << "tracker reset to the reloaded checkpoint's bound";
  // 11..20 committed twice in all: once before the loss, once after; everything else once.
  std::vector<std::int64_t> history = Positions(1, 20);
  for (auto p : Positions(11, 30)) history.push_back(p);
  EXPECT_EQ(store.History(), history);
  EXPECT_EQ(store.Applied(), Positions(1, 30));
  EXPECT_EQ(store.Stored(), At(30));
  using T = std::tuple<std::int64_t, std::int64_t, bool>;
  EXPECT_EQ(Transitions(store.Calls()),
            (std::vector<T>{
                {0, 10, true}, {10, 20, true}, {20, 30, false}, {10, 20, true}, {20, 30, true}}));
  EXPECT_EQ(tracker.Bound(), 301u);
  EXPECT_EQ(projector.Stats().errors, 1u);
}

// Acknowledge names only checkpoints whose Apply returned (the store already holds them when
// the ack comes), in increasing order; never a batch whose Apply threw, even one that was
// committed before the fault (its successor's ack covers it), and faults of the source's
// prefetch do not disturb that.
TEST(Projector, AcknowledgesOnlyReturnedAppliesInIncreasingOrder) {
  MemorySource source(40);
  MemoryStore store(/*fail_on_call=*/2);  // fails before writing
  store.ThrowAfterCommitOnCall(4);        // writes, then fails
  ProgressTracker tracker;
  source.OnFetch([](int call, const Checkpoint&, std::size_t) {
    if (call == 5) throw std::runtime_error("source fault");
  });
  std::vector<std::string> violations;  // loop thread; read after Stop
  source.OnAcknowledge([&](const Checkpoint& applied) {
    const auto calls = store.Calls();
    if (calls.empty() || !calls.back().returned || !(calls.back().to == applied)) {
      violations.push_back("ack " + std::to_string(applied.position) +
                           " does not follow a returned Apply to it");
    }
    if (!(store.Stored() == applied)) {
      violations.push_back("ack " + std::to_string(applied.position) + " not stored");
    }
  });
  Projector projector(Fast(5, 5), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(tracker.WaitFor(401, 5s));
  projector.Stop();

  EXPECT_EQ(violations, std::vector<std::string>{});
  const auto calls = store.Calls();
  std::vector<Checkpoint> returned;
  for (const auto& c : calls) {
    if (c.returned) returned.push_back(c.to);
  }
  const auto acks = source.Acks();
  EXPECT_EQ(acks, returned);
  ASSERT_FALSE(acks.empty());
  for (std::size_t i = 1; i < acks.size(); ++i) {
    EXPECT_LT(acks[i - 1].position, acks[i].position) << i;
  }
  ASSERT_GE(calls.size(), 4u);
  EXPECT_FALSE(calls[1].returned);
  EXPECT_FALSE(calls[3].returned);
  EXPECT_EQ(std::count(acks.begin(), acks.end(), calls[3].to), 0) << "committed, but threw";
  EXPECT_EQ(acks.back(), At(40));
  EXPECT_EQ(store.Applied(), Positions(1, 40));
  EXPECT_EQ(projector.Stats().errors, 3u);
}

}  // namespace
}  // namespace shopcqrs::cqrs

namespace shopcqrs::cqrs {
namespace {

// A source that wakes its waiter when events are appended, and records when each fetch came.
class WakingSource final : public EventSource {
 public:
  void Append(int events) {
    {
      std::lock_guard lock(mutex_);
      for (int i = 0; i < events; ++i) {
        const auto position = static_cast<std::int64_t>(log_.size()) + 1;
        log_.push_back(Event(10u * position, position));
      }
      appended_at_ = Clock::now();
    }
    changed_.notify_all();
  }
  EventBatch FetchBatch(const Checkpoint& after, std::size_t max) override {
    std::lock_guard lock(mutex_);
    EventBatch batch;
    batch.next = after;
    for (const auto& e : log_) {
      if (batch.events.size() >= max) break;
      if (e.position > after.position) batch.events.push_back(e);
    }
    if (!batch.events.empty()) {
      batch.next = {batch.events.back().xid, batch.events.back().position,
                    batch.events.back().xid + 1};
      fetched_ = batch.events.back().position;
      waits_.push_back(Clock::now() - appended_at_);
    }
    changed_.notify_all();
    return batch;
  }
  bool WaitForChange(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout,
                             [&] { return static_cast<std::int64_t>(log_.size()) > fetched_; });
  }
  // Waits until every appended event was fetched; answers how long after its append the last
  // fetch came.
  Clock::duration WaitFetched() {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 5s, [&] { return static_cast<std::int64_t>(log_.size()) == fetched_; });
    return waits_.empty() ? Clock::duration::max() : waits_.back();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<StoredEvent> log_;
  std::int64_t fetched_ = 0;
  Clock::time_point appended_at_;
  std::vector<Clock::duration> waits_;
};

class CountingStore final : public ProjectionStore {
 public:
  Checkpoint LoadCheckpoint() override { return {}; }
  void Apply(const Checkpoint&, const std::vector<StoredEvent>&, const Checkpoint&) override {}
};

// Group commit: after a batch of several events the next wake-up lingers before fetching, so the
// next batch gathers what arrives meanwhile; after a batch of one event (a quiet stream) the next
// event is fetched at once.
TEST(Projector, LingersBeforeTheNextFetchOnlyAfterABatchOfSeveralEvents) {
  WakingSource source;
  CountingStore store;
  auto options = Fast(100);
  options.idle_wait = 1s;
  options.linger = 300ms;
  Projector projector(options, source, store);
  projector.Start();
  source.Append(1);
  source.WaitFetched();
  source.Append(1);  // after a batch of one: no linger
  EXPECT_LT(source.WaitFetched(), 200ms);
  source.Append(3);
  source.WaitFetched();
  source.Append(1);  // after a batch of three: the fetch waits for more
  EXPECT_GE(source.WaitFetched(), 300ms);
  projector.Stop();
}

}  // namespace
}  // namespace shopcqrs::cqrs
