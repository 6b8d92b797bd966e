#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "adapters/nats/event_messages.h"
#include "cqrs/projector.h"
#include "infra/nats/jetstream.h"

namespace shopcqrs::adapters::relay {

// The relay: reads the write database's outbox with the gap-free reader (pg_outbox) and appends
// every event, in (xid, position) order, to the JetStream event stream.
//
// - At most one relay publishes at a time: the leader holds a session-level PostgreSQL
//   advisory lock on the write database (kRelayLockKey); the others wait as standbys and take
//   over when the leader's session ends (crash, kill -9, network).
// - It keeps no state of its own. As leader it reads where it stands from the stream itself:
//   the checkpoint header of the stream's last message. After a crash it resumes from there, so
//   nothing is lost and nothing is appended twice.
// - Every message names its predecessor's checkpoint (Shopcqrs-Prev), and before appending the
//   relay checks that the stream's last message names the one before it.
// - Every append carries the expected last sequence of the stream, every later append of a run
//   also the expected last message id (and Nats-Msg-Id = event id): see infra::nats::AppendChain.
//   an append that does not follow exactly what this relay believes is the stream's end is
//   refused by the server, and the relay re-reads the stream's end. A relay that lost the lock
//   without noticing, a publish that timed out but was stored, two relays racing during a
//   takeover: none can leave a gap, a duplicate or a reordering in the stream.
class Relay {
 public:
  struct Options {
    std::string write_db;  // libpq conninfo of the write database
    infra::nats::JetStreamConnection::Options nats;
    std::string stream = std::string(adapters::nats::kDefaultStream);
    // The stream's replicas on a JetStream cluster (1: one server). The relay creates the
    // stream with them and, with reconcile_replicas, moves an existing stream to them (only
    // when they were asked for explicitly: a default must never scale a stream down).
    int stream_replicas = 1;
    bool reconcile_replicas = false;
    std::size_t batch_size = 4096;
    std::chrono::milliseconds idle_wait{500};  // outbox wait when caught up (LISTEN wakes it)
    std::chrono::milliseconds standby_poll{250};
    std::chrono::milliseconds lock_check_interval{1000};
    std::chrono::milliseconds initial_backoff{50};
    std::chrono::milliseconds max_backoff{2000};
  };

  enum class Role { kStopped, kStandby, kLeader, kStalled };

  struct Stats {
    Role role = Role::kStopped;
    cqrs::Checkpoint checkpoint;  // the stream's end as this relay knows it
    std::uint64_t stream_sequence = 0;
    std::uint64_t events_published = 0;
    std::uint64_t bounds_published = 0;
    std::uint64_t resyncs = 0;  // appends refused or failed; the stream's end re-read
    std::uint64_t errors = 0;
    std::uint64_t takeovers = 0;  // times this relay became leader
    std::string last_error;
    cqrs::TimePoint heartbeat{};
    std::chrono::milliseconds last_lag{0};  // commit to appended, of the last event
  };

  explicit Relay(Options options);
  ~Relay();  // Stop()
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  void Start();
  void Stop();  // releases the lock (its session ends)
  Stats GetStats() const;

 private:
  struct Loop;
  void Run();
  bool SleepUnlessStopped(std::chrono::milliseconds duration);

  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stop_ = false;
  Stats stats_;
  std::thread thread_;
};

std::string_view ToString(Relay::Role role);  // "stopped", "standby", "leader", "stalled"

// The advisory lock key that elects the relay (one per write database).
inline constexpr std::int64_t kRelayLockKey = 0x73686f7072656c61;  // "shoprela"

}  // namespace shopcqrs::adapters::relay
