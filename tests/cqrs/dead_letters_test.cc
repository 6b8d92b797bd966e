// Sequenced dead letters in the projector runtime, with an in-memory source and a transactional
// in-memory store: a poison event parks only its aggregate (with every later event of it), every
// other aggregate is applied exactly once and in order, transient faults never park, and retry
// and skip converge.

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cqrs/projector.h"

namespace shopcqrs::cqrs {
namespace {

using namespace std::chrono_literals;

// Event `position` of aggregate `id` (type "Order"), xid = 10 x position.
StoredEvent Event(std::int64_t position, std::string id, std::int64_t version) {
  StoredEvent event;
  event.xid = 10u * static_cast<std::uint64_t>(position);
  event.position = position;
  event.envelope.event_id = "e" + std::to_string(position);
  event.envelope.type = "Test";
  event.envelope.aggregate_type = "Order";
  event.envelope.aggregate_id = std::move(id);
  event.envelope.aggregate_version = version;
  return event;
}

class LogSource final : public EventSource {
 public:
  void Append(const std::string& id) {
    std::lock_guard lock(mutex_);
    const auto position = static_cast<std::int64_t>(log_.size()) + 1;
    log_.push_back(Event(position, id, ++versions_[id]));
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
    }
    return batch;
  }
  bool WaitForChange(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(std::min(timeout, 1ms));
    return false;
  }
  std::int64_t Size() {
    std::lock_guard lock(mutex_);
    return static_cast<std::int64_t>(log_.size());
  }
  std::vector<StoredEvent> Log() {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  std::mutex mutex_;
  std::vector<StoredEvent> log_;
  std::map<std::string, std::int64_t> versions_;
};

// Per aggregate the versions applied, in order; a poison position fails deterministically while
// it is poisoned; `transient` failures are store faults. Each Apply is all or nothing.
class DeadLetterStore final : public ProjectionStore {
 public:
  struct State {
    Checkpoint checkpoint;
    std::map<std::string, std::vector<std::int64_t>> applied;  // the versions whose effect it has
    std::map<std::string, std::int64_t> version;               // applied or passed (skipped)
    std::map<std::int64_t, ParkedEvent> parked;                // by position
    std::vector<SkipRecord> skips;
  };

  void Poison(std::int64_t position, bool on = true) {
    std::lock_guard lock(mutex_);
    if (on) {
      poison_.insert(position);
    } else {
      poison_.erase(position);
    }
  }
  void FailTransiently(int times) {
    std::lock_guard lock(mutex_);
    transient_ = times;
  }
  State Snapshot() {
    std::lock_guard lock(mutex_);
    return state_;
  }
  int PoisonAttempts() {
    std::lock_guard lock(mutex_);
    return poison_attempts_;
  }

  bool KeepsDeadLetters() const override { return true; }
  Checkpoint LoadCheckpoint() override {
    std::lock_guard lock(mutex_);
    return state_.checkpoint;
  }
  void Apply(const Checkpoint& from, const std::vector<StoredEvent>& events,
             const Checkpoint& to) override {
    ApplyWithDeadLetters(from, events, to, {});
  }
  void ApplyWithDeadLetters(const Checkpoint& from, const std::vector<StoredEvent>& events,
                            const Checkpoint& to, const DeadLetterChanges& changes) override {
    std::lock_guard lock(mutex_);
    if (transient_ > 0) {
      --transient_;
      throw std::runtime_error("connection lost");
    }
    if (!(state_.checkpoint == from)) throw std::runtime_error("checkpoint moved");
    State next = state_;
    for (const auto& e : events) {
      if (poison_.contains(e.position)) {
        ++poison_attempts_;
        throw DeterministicApplyError("cannot apply event " + std::to_string(e.position));
      }
      auto& have = next.version[e.envelope.aggregate_id];
      if (e.envelope.aggregate_version <= have) continue;
      if (e.envelope.aggregate_version != have + 1) {
        have = PassedUpTo(changes.pass, e.envelope.aggregate_type, e.envelope.aggregate_id, have);
      }
      if (e.envelope.aggregate_version != have + 1) {
        throw DeterministicApplyError("version gap at " + std::to_string(e.position));
      }
      have = e.envelope.aggregate_version;
      next.applied[e.envelope.aggregate_id].push_back(have);
    }
    for (const auto& p : changes.park) next.parked.emplace(p.event.position, p);
    if (changes.release) {
      std::erase_if(next.parked, [&](const auto& item) {
        return item.second.event.envelope.aggregate_id == changes.release->id;
      });
    }
    if (changes.skip) next.skips.push_back(*changes.skip);
    next.checkpoint = to;
    state_ = std::move(next);
  }
  std::vector<DeadLetter> LoadDeadLetters() override {
    std::lock_guard lock(mutex_);
    std::map<AggregateKey, DeadLetter> letters;
    for (const auto& [position, p] : state_.parked) {
      AggregateKey key{p.event.envelope.aggregate_type, p.event.envelope.aggregate_id};
      auto [it, first] = letters.try_emplace(key);
      if (first) {
        it->second.aggregate = key;
        it->second.first_position = position;
        it->second.first_xid = p.event.xid;
        it->second.error = p.error;
      }
      ++it->second.events;
      for (const auto& k : p.keys) it->second.keys.push_back(k);
    }
    std::vector<DeadLetter> out;
    for (auto& [_, l] : letters) out.push_back(l);
    return out;
  }
  std::vector<StoredEvent> LoadParkedEvents(const AggregateKey& aggregate) override {
    std::lock_guard lock(mutex_);
    std::vector<StoredEvent> out;
    for (const auto& [_, p] : state_.parked) {
      if (p.event.envelope.aggregate_id == aggregate.id) out.push_back(p.event);
    }
    return out;
  }
  std::vector<SkipRecord> LoadSkips() override {
    std::lock_guard lock(mutex_);
    return state_.skips;
  }

 private:
  std::mutex mutex_;
  State state_;
  std::set<std::int64_t> poison_;
  int poison_attempts_ = 0;
  int transient_ = 0;
};

Projector::Options Fast(std::size_t batch = 50) {
  return {.name = "t",
          .batch_size = batch,
          .idle_wait = 1ms,
          .linger = 0us,
          .initial_backoff = 1ms,
          .max_backoff = 2ms,
          .poison_attempts = 3};
}

template <typename Predicate>
bool Eventually(Predicate done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Interleaves `rounds` events of each of the aggregates a, b, c, d: a1 b1 c1 d1 a2 b2 ...
void Busy(LogSource& source, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    for (const char* id : {"a", "b", "c", "d"}) source.Append(id);
  }
}

std::vector<std::int64_t> Versions(std::int64_t n) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

TEST(DeadLetters, APoisonEventParksOnlyItsAggregateAndEveryLaterEventOfIt) {
  LogSource source;
  DeadLetterStore store;
  Busy(source, 10);  // b's third event is position 10
  store.Poison(10);
  ProgressTracker tracker;
  Projector projector(Fast(7), source, store, &tracker);
  projector.Start();
  ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
  auto state = store.Snapshot();
  EXPECT_EQ(state.applied["a"], Versions(10));
  EXPECT_EQ(state.applied["c"], Versions(10));
  EXPECT_EQ(state.applied["d"], Versions(10));
  EXPECT_EQ(state.applied["b"], Versions(2));  // b stops before its poison event
  ASSERT_EQ(state.parked.size(), 8u);          // b3 .. b10
  EXPECT_EQ(state.parked.begin()->first, 10);
  EXPECT_NE(state.parked.begin()->second.error.find("cannot apply event 10"), std::string::npos);
  EXPECT_EQ(std::next(state.parked.begin())->second.error, "");
  // The batch failed once as a whole; then the event alone, poison_attempts times.
  EXPECT_EQ(store.PoisonAttempts(), 1 + 3) << "bounded retries before parking";

  const auto letters = projector.DeadLetters();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].aggregate.id, "b");
  EXPECT_EQ(letters[0].first_position, 10);
  EXPECT_EQ(letters[0].events, 8);
  EXPECT_EQ(projector.Stats().dead_letters, 8);

  // Later events of b are parked too, as they come; others still flow.
  Busy(source, 2);
  ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
  state = store.Snapshot();
  EXPECT_EQ(state.applied["a"], Versions(12));
  EXPECT_EQ(state.parked.size(), 10u);
  EXPECT_EQ(projector.Stats().dead_letters, 10);

  // Tokens: an answer about b that a token past the poison covers is blocked, others are not.
  ASSERT_TRUE(tracker.Parked());
  const std::vector<std::string> b_keys{"order:b"}, a_keys{"order:a"}, any{"order:*"};
  EXPECT_TRUE(tracker.Parked()->Blocks(101, b_keys));
  EXPECT_FALSE(tracker.Parked()->Blocks(100, b_keys)) << "a token before the poison event";
  EXPECT_FALSE(tracker.Parked()->Blocks(101, a_keys));
  EXPECT_TRUE(tracker.Parked()->Blocks(101, any));
  EXPECT_EQ(tracker.WaitUnparked(101, b_keys, 1ms), ProgressTracker::WaitResult::kParked);
  EXPECT_EQ(tracker.WaitUnparked(101, a_keys, 1ms), ProgressTracker::WaitResult::kReady);

  // Retry while still poisoned: stays parked. After the fix: converges exactly.
  auto failed = projector.Resolve("b", Projector::Resolution::kRetry, "admin").get();
  EXPECT_TRUE(failed.found);
  EXPECT_FALSE(failed.resolved);
  EXPECT_EQ(store.Snapshot().parked.size(), 10u);
  store.Poison(10, false);
  auto done = projector.Resolve("b", Projector::Resolution::kRetry, "admin").get();
  EXPECT_TRUE(done.resolved) << done.error;
  EXPECT_EQ(done.applied, 10);
  state = store.Snapshot();
  EXPECT_EQ(state.applied["b"], Versions(12));
  EXPECT_TRUE(state.parked.empty());
  EXPECT_TRUE(projector.DeadLetters().empty());
  EXPECT_EQ(projector.Stats().dead_letters, 0);
  EXPECT_EQ(tracker.WaitUnparked(101, b_keys, 1ms), ProgressTracker::WaitResult::kReady);

  // And b goes on live.
  Busy(source, 1);
  ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
  EXPECT_EQ(store.Snapshot().applied["b"], Versions(13));
  EXPECT_FALSE(projector.Resolve("b", Projector::Resolution::kRetry, "admin").get().found);
}

TEST(DeadLetters, SkipSetsTheFirstParkedEventAsideAppliesTheRestAndIsHonouredFromZero) {
  LogSource source;
  Busy(source, 5);  // c's second event is position 7
  DeadLetterStore store;
  store.Poison(7);
  DeadLetterStore::State state;
  {
    Projector projector(Fast(), source, store);
    projector.Start();
    ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
    ASSERT_EQ(projector.DeadLetters().size(), 1u);
    EXPECT_EQ(projector.DeadLetters()[0].events, 4);  // c2 .. c5
    auto skipped = projector.Resolve("c", Projector::Resolution::kSkip, "ops@example").get();
    ASSERT_TRUE(skipped.resolved) << skipped.error;
    EXPECT_EQ(skipped.skipped, 1);
    EXPECT_EQ(skipped.applied, 3);
    state = store.Snapshot();
    EXPECT_EQ(state.applied["c"], (std::vector<std::int64_t>{1, 3, 4, 5}));
    EXPECT_TRUE(state.parked.empty());
    ASSERT_EQ(state.skips.size(), 1u);
    EXPECT_EQ(state.skips[0].position, 7);
    EXPECT_EQ(state.skips[0].event_id, "e7");
    EXPECT_EQ(state.skips[0].skipped_by, "ops@example");
    EXPECT_EQ(state.skips[0].aggregate.id, "c");

    // c goes on live after the skip.
    source.Append("c");
    ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
    EXPECT_EQ(store.Snapshot().applied["c"], (std::vector<std::int64_t>{1, 3, 4, 5, 6}));
    state = store.Snapshot();
  }
  // A store built from zero with the same skip list never applies the skipped event (still
  // poisonous), parks nothing and ends equal to the live one.
  DeadLetterStore rebuilt;
  rebuilt.Poison(7);
  rebuilt.ApplyWithDeadLetters({}, {}, {}, {.skip = state.skips[0]});
  Projector again(Fast(3), source, rebuilt);
  again.Start();
  ASSERT_TRUE(Eventually([&] { return rebuilt.Snapshot().checkpoint.position == source.Size(); }));
  EXPECT_TRUE(rebuilt.Snapshot().parked.empty());
  EXPECT_EQ(rebuilt.Snapshot().applied, state.applied);
  EXPECT_EQ(rebuilt.PoisonAttempts(), 0);
}

TEST(DeadLetters, TransientStoreFaultsNeverPark) {
  LogSource source;
  Busy(source, 20);
  DeadLetterStore store;
  store.FailTransiently(10);
  Projector projector(Fast(3), source, store);
  projector.Start();
  ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
  auto state = store.Snapshot();
  EXPECT_TRUE(state.parked.empty());
  for (const char* id : {"a", "b", "c", "d"}) EXPECT_EQ(state.applied[id], Versions(20));
  EXPECT_TRUE(projector.DeadLetters().empty());
}

TEST(DeadLetters, ParkedAggregatesAreReloadedAfterARestartAndStillParkTheirEvents) {
  LogSource source;
  Busy(source, 4);  // d's first event is position 4
  DeadLetterStore store;
  store.Poison(4);
  {
    Projector projector(Fast(), source, store);
    projector.Start();
    ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
    projector.Stop();
  }
  EXPECT_EQ(store.Snapshot().parked.size(), 4u);
  Busy(source, 2);
  Projector projector(Fast(), source, store);
  projector.Start();
  ASSERT_TRUE(Eventually([&] { return store.Snapshot().checkpoint.position == source.Size(); }));
  auto state = store.Snapshot();
  EXPECT_EQ(state.parked.size(), 6u) << "d's new events parked behind the reloaded letter";
  EXPECT_TRUE(state.applied["d"].empty());
  EXPECT_EQ(state.applied["a"], Versions(6));
  ASSERT_EQ(projector.DeadLetters().size(), 1u);
  EXPECT_EQ(projector.DeadLetters()[0].events, 6);

  // The poison cured, a retry converges.
  store.Poison(4, false);
  auto retried = projector.Resolve("d", Projector::Resolution::kRetry, "admin").get();
  EXPECT_TRUE(retried.resolved) << retried.error;
  EXPECT_EQ(store.Snapshot().applied["d"], Versions(6));
}

TEST(DeadLetters, AStoreWithoutDeadLettersStopsLoudlyOnAPoisonEvent) {
  LogSource source;
  Busy(source, 3);
  class Plain final : public ProjectionStore {
   public:
    Checkpoint LoadCheckpoint() override { return {}; }
    void Apply(const Checkpoint&, const std::vector<StoredEvent>& events,
               const Checkpoint&) override {
      if (!events.empty()) throw DeterministicApplyError("undecodable");
    }
  } store;
  Projector projector(Fast(), source, store);
  projector.Start();
  ASSERT_TRUE(Eventually([&] { return projector.Stats().status == ProjectorStatus::kError; }));
  EXPECT_EQ(projector.Stats().last_error, "undecodable");
}

}  // namespace
}  // namespace shopcqrs::cqrs
