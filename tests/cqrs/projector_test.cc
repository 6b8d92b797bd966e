// The projector runtime with in-memory sources and stores: what it acknowledges, when.

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cqrs/projector.h"

namespace shopcqrs::cqrs {
namespace {

using namespace std::chrono_literals;

StoredEvent Event(std::uint64_t xid, std::int64_t position) {
  StoredEvent event;
  event.xid = xid;
  event.position = position;
  event.envelope.event_id = std::to_string(position);
  event.envelope.type = "Test";
  return event;
}

// A log of events with xid = 10 * position; every fetch bound is the last xid + 1.
class MemorySource final : public EventSource {
 public:
  explicit MemorySource(int events) {
    for (int i = 1; i <= events; ++i) log_.push_back(Event(10u * i, i));
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
      batch.next.xid = batch.events.back().xid;
      batch.next.position = batch.events.back().position;
      batch.next.bound = batch.next.xid + 1;
    }
    return batch;
  }
  bool WaitForChange(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(std::min(timeout, 5ms));
    return false;
  }
  void Acknowledge(const Checkpoint& applied) override {
    std::lock_guard lock(mutex_);
    acks_.push_back(applied);
  }
  std::vector<Checkpoint> Acks() {
    std::lock_guard lock(mutex_);
    return acks_;
  }

 private:
  std::mutex mutex_;
  std::vector<StoredEvent> log_;
  std::vector<Checkpoint> acks_;
};

// Stores checkpoints; fails the n-th Apply once.
class MemoryStore final : public ProjectionStore {
 public:
  explicit MemoryStore(int fail_on_call = 0) : fail_on_call_(fail_on_call) {}
  Checkpoint LoadCheckpoint() override {
    std::lock_guard lock(mutex_);
    return checkpoint_;
  }
  void Apply(const std::vector<StoredEvent>& events, const Checkpoint& checkpoint) override {
    std::lock_guard lock(mutex_);
    if (++calls_ == fail_on_call_) throw std::runtime_error("store fault");
    for (const auto& e : events) applied_.push_back(e.position);
    checkpoint_ = checkpoint;
  }
  std::vector<std::int64_t> Applied() {
    std::lock_guard lock(mutex_);
    return applied_;
  }

 private:
  std::mutex mutex_;
  int fail_on_call_;
  int calls_ = 0;
  Checkpoint checkpoint_;
  std::vector<std::int64_t> applied_;
};

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

}  // namespace
}  // namespace shopcqrs::cqrs
