#include "adapters/relay/relay.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "cqrs/commit_bound.h"
#include "infra/pg/connection.h"

namespace shopcqrs::adapters::relay {

using infra::nats::AppendChain;
using infra::nats::JetStreamConnection;
using infra::nats::MsgPtr;

namespace {

cqrs::TimePoint NowMs() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

}  // namespace

std::string_view ToString(Relay::Role role) {
  switch (role) {
    case Relay::Role::kStopped:
      return "stopped";
    case Relay::Role::kStandby:
      return "standby";
    case Relay::Role::kLeader:
      return "leader";
    case Relay::Role::kStalled:
      return "stalled";
  }
  return "unknown";
}

// The loop thread's connections and what it knows of the stream.
struct Relay::Loop {
  std::unique_ptr<infra::pg::Connection> lock;  // its session holds the advisory lock while leader
  bool leader = false;
  std::chrono::steady_clock::time_point lock_checked{};
  std::unique_ptr<pg_outbox::OutboxReader> reader;
  std::unique_ptr<JetStreamConnection> nats;
  bool synced = false;
  cqrs::Checkpoint checkpoint;  // of the stream's last message
  std::uint64_t sequence = 0;   // the stream's last sequence
};

Relay::Relay(Options options) : options_(std::move(options)) {}

Relay::~Relay() { Stop(); }

void Relay::Start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Relay::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_requested_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  stats_.role = Role::kStopped;
}

Relay::Stats Relay::GetStats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool Relay::SleepUnlessStopped(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !stop_requested_.wait_for(lock, duration, [&] { return stop_; });
}

void Relay::Run() {
  Loop loop;
  auto backoff = options_.initial_backoff;

  auto set_role = [&](Role role) {
    std::lock_guard lock(mutex_);
    stats_.role = role;
    stats_.heartbeat = NowMs();
  };

  // Whether this relay holds the lock; takes it when free. The session is checked every
  // lock_check_interval: a leader whose session died stops publishing (the stream's expected
  // sequence keeps a late append from doing harm meanwhile).
  auto holds_lock = [&]() -> bool {
    const auto now = std::chrono::steady_clock::now();
    if (loop.lock && loop.lock->IsBroken()) {
      loop.lock.reset();
      loop.leader = false;
    }
    if (loop.leader && now - loop.lock_checked < options_.lock_check_interval) return true;
    try {
      if (!loop.lock) {
        loop.lock = std::make_unique<infra::pg::Connection>(
            options_.write_db, infra::pg::SessionSettings{.application_name = "shopcqrs-relay"});
      }
      if (loop.leader) {
        loop.lock->Exec("SELECT 1");
      } else {
        auto result =
            loop.lock->Exec(fmt::format("SELECT pg_try_advisory_lock({})", kRelayLockKey));
        if (result.Text(0, 0) != std::string_view("t")) return false;
        loop.leader = true;
        loop.synced = false;
        std::lock_guard lock(mutex_);
        ++stats_.takeovers;
        spdlog::info("relay: leader (advisory lock {} taken)", kRelayLockKey);
      }
      loop.lock_checked = now;
      return true;
    } catch (const std::exception& error) {
      if (loop.leader) spdlog::warn("relay: lost the lock session: {}", error.what());
      loop.lock.reset();
      loop.leader = false;
      throw;
    }
  };

  // Reads the stream's end: where this relay continues.
  auto sync = [&] {
    nats::EnsureEventStream(*loop.nats, options_.stream, options_.stream_replicas,
                            options_.reconcile_replicas);
    loop.sequence = loop.nats->LastSequence(options_.stream);
    loop.checkpoint = {};
    if (loop.sequence > 0) {
      MsgPtr last(loop.nats->GetMessage(options_.stream, loop.sequence));
      if (!last) throw std::runtime_error("the stream's last message cannot be read");
      auto checkpoint = nats::MessageCheckpoint(last.get());
      if (!checkpoint) {
        throw std::runtime_error(
            fmt::format("the stream's last message (#{}) has no checkpoint header", loop.sequence));
      }
      loop.checkpoint = *checkpoint;
      // The chain must hold at the stream's end before anything is appended after it: the last
      // message names the one before it (a hole there would otherwise be continued).
      const auto prev = nats::MessagePrev(last.get());
      if (prev && loop.sequence > 1) {
        MsgPtr before(loop.nats->GetMessage(options_.stream, loop.sequence - 1));
        const auto expected = before ? nats::MessageCheckpoint(before.get()) : std::nullopt;
        if (expected && !nats::SamePosition(*prev, *expected)) {
          throw std::runtime_error(fmt::format(
              "the stream's last message (#{}) follows {}, but #{} is {}: the stream has a hole; "
              "not appending after it",
              loop.sequence, nats::FormatCheckpoint(*prev), loop.sequence - 1,
              nats::FormatCheckpoint(*expected)));
        }
      }
    }
    loop.synced = true;
    std::lock_guard lock(mutex_);
    stats_.checkpoint = loop.checkpoint;
    stats_.stream_sequence = loop.sequence;
  };

  // Appends `messages` after loop.sequence (AppendChain). Answers whether every append was
  // stored; otherwise the stream's end must be read again.
  auto append = [&](std::vector<natsMsg*>& messages) -> bool {
    const auto count = messages.size();
    std::string what;
    if (AppendChain(*loop.nats, messages, loop.sequence, &what)) {
      loop.sequence += count;
      return true;
    }
    spdlog::warn("relay: {}; re-reading the stream's end", what);
    loop.synced = false;
    // Appends still pending (sent before a disconnect, say) may never be answered: a new
    // connection starts with none, and the stream's end says what was stored.
    loop.nats.reset();
    std::lock_guard lock(mutex_);
    ++stats_.resyncs;
    stats_.last_error = what;
    return false;
  };

  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stop_) break;
    }
    try {
      if (!holds_lock()) {
        set_role(Role::kStandby);
        if (!SleepUnlessStopped(options_.standby_poll)) break;
        continue;
      }
      if (!loop.nats) {
        loop.nats = std::make_unique<JetStreamConnection>(options_.nats);
        loop.synced = false;
      }
      if (!loop.synced) sync();
      if (!loop.reader) {
        loop.reader = std::make_unique<pg_outbox::OutboxReader>(
            pg_outbox::OutboxReader::Options{.conninfo = options_.write_db});
      }
      set_role(Role::kLeader);

      const cqrs::Checkpoint from = loop.checkpoint;
      auto batch = loop.reader->FetchBatch(from, options_.batch_size);
      batch.next.bound = std::max(batch.next.bound, from.bound);
      std::vector<natsMsg*> messages;
      messages.reserve(batch.events.size() + 1);
      std::uint64_t bound = from.bound;
      cqrs::Checkpoint prev = from;  // each message names the one before it
      // Bounds carry the epoch of the reader's snapshot (cqrs/commit_bound.h).
      const std::uint64_t epoch = cqrs::BoundEpoch(batch.next.bound);
      for (std::size_t i = 0; i < batch.events.size(); ++i) {
        const auto& event = batch.events[i];
        // Applying event i makes every xid below its own applied (all earlier xids finished
        // and were read before it); the last one carries the batch's bound.
        bound = i + 1 == batch.events.size()
                    ? batch.next.bound
                    : std::max(bound, cqrs::ComposeBound(epoch, event.xid));
        const cqrs::Checkpoint after{event.xid, event.position, bound};
        messages.push_back(nats::EncodeEvent(event, after, prev));
        prev = after;
      }
      const bool bound_only = batch.events.empty() && batch.next.bound > from.bound;
      if (bound_only) messages.push_back(nats::EncodeBound(batch.next, from));
      if (!messages.empty() && !append(messages)) {
        // Not confirmed (no stream leader during an election, a lost quorum, a timeout): wait
        // before reading the stream's end again, backing off, instead of retrying at once.
        set_role(Role::kStalled);
        if (!SleepUnlessStopped(backoff)) break;
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      if (!messages.empty()) {
        loop.checkpoint = batch.next;
        const auto now = NowMs();
        std::lock_guard lock(mutex_);
        stats_.checkpoint = loop.checkpoint;
        stats_.stream_sequence = loop.sequence;
        stats_.events_published += batch.events.size();
        if (bound_only) ++stats_.bounds_published;
        if (!batch.events.empty()) stats_.last_lag = now - batch.events.back().committed_at;
        stats_.last_error.clear();
      }
      backoff = options_.initial_backoff;
      if (loop.synced && batch.events.size() < options_.batch_size) {
        loop.reader->WaitForChange(options_.idle_wait);
      }
    } catch (const std::exception& error) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.errors;
        stats_.last_error = error.what();
        stats_.role = Role::kStalled;
        stats_.heartbeat = NowMs();
      }
      spdlog::warn("relay: {}", error.what());
      loop.synced = false;
      if (loop.reader) loop.reader->Reset();
      // A connection libnats gave up on is replaced; otherwise it reconnects by itself.
      if (loop.nats && natsConnection_IsClosed(loop.nats->connection())) loop.nats.reset();
      if (!SleepUnlessStopped(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  // Ending the session releases the lock: a standby takes over.
  loop.reader.reset();
  loop.nats.reset();
  loop.lock.reset();
}

}  // namespace shopcqrs::adapters::relay
