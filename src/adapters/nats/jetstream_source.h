#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "adapters/nats/event_messages.h"
#include "cqrs/projector.h"
#include "infra/nats/jetstream.h"

namespace shopcqrs::adapters::nats {

// An EventSource that reads the JetStream event stream through a durable consumer of its own
// ("shopcqrs_<projection>", ack policy all, acked after the read store committed), so a
// projector consumes from the broker with the same runtime as from the outbox. The consumer
// pushes to a subscription of this source (a message is in hand the moment the stream stores
// it; at most max_ack_pending unacked messages are in flight), and every delivery's stream
// sequence is checked: a message the client did not get (a slow-consumer drop, a delivery
// lost while nats-server restarted) is a gap, and the consumer is re-seated instead of skipping.
//
// The read store's checkpoint stays the truth. When the projector starts from a checkpoint
// (at start, or after a fault), the durable consumer is kept if its ack floor is exactly that
// checkpoint with nothing in flight; otherwise it is re-seated: deleted and created again at the
// first stream message at or after the checkpoint (found by binary search over the stream,
// whose messages are in checkpoint order). Every delivery is judged by content (JudgeDelivery):
// messages at or before the cursor are skipped; a message after it must name it as its
// predecessor (Shopcqrs-Prev), else the stream has a hole or a rewritten tail and the projection
// stops loudly (StreamDivergedError, status "error") instead of reading past it; a redelivery
// that carries new content re-seats. So every event is applied once, in stream order (which is
// per-aggregate order).
class JetStreamSource final : public cqrs::EventSource {
 public:
  struct Options {
    infra::nats::JetStreamConnection::Options nats;
    std::string stream = std::string(kDefaultStream);
    std::string consumer;     // durable name; no '.', '*', '>' or spaces
    int stream_replicas = 1;  // should this source create the stream (the relay's otherwise)
    std::chrono::milliseconds ack_wait{60'000};
    std::int64_t max_ack_pending = 262'144;
  };
  explicit JetStreamSource(Options options);
  ~JetStreamSource() override;

  cqrs::EventBatch FetchBatch(const cqrs::Checkpoint& after, std::size_t max) override;
  bool WaitForChange(std::chrono::milliseconds timeout) override;
  void Acknowledge(const cqrs::Checkpoint& applied) override;
  void Reset() override;

  // How often the consumer was re-seated (created at a searched position).
  std::uint64_t Reseats() const;

  // The stream messages the durable consumer has not had acknowledged: pending delivery plus
  // delivered and not yet applied (the projection's backlog, as the broker counts it). Asked on a
  // connection of its own, so it never waits for a fetch. Throws infra::nats::NatsError (also
  // while the consumer does not exist yet).
  std::int64_t Backlog();

 private:
  void EnsureConnected();                    // mutex_ held
  void Seat(const cqrs::Checkpoint& after);  // mutex_ held
  // The deliver subject of the durable consumer if it stands exactly at `after` with nothing in
  // flight (stream_sequence_ set to its ack floor); empty otherwise.
  std::string ConsumerMatches(const cqrs::Checkpoint& after);  // mutex_ held
  std::uint64_t FindStart(const cqrs::Checkpoint& after);      // mutex_ held
  void Subscribe(const std::string& deliver_subject);          // mutex_ held
  void DropSubscription();                                     // mutex_ held

  Options options_;
  mutable std::mutex mutex_;
  std::unique_ptr<infra::nats::JetStreamConnection> nats_;
  natsSubscription* subscription_ = nullptr;
  bool seated_ = false;
  cqrs::Checkpoint cursor_;            // checkpoint after the last message handed out
  std::uint64_t stream_sequence_ = 0;  // of the last message taken from the subscription
  std::deque<natsMsg*> buffered_;
  std::optional<std::chrono::steady_clock::time_point>
      idle_since_;  // taken by WaitForChange, not handed out yet
  // The ack subject of the last message of each batch handed out, with its checkpoint: acked
  // (ack all) once the store committed that far.
  std::mutex ack_mutex_;
  std::deque<std::pair<cqrs::Checkpoint, std::string>> unacked_;
  std::atomic<std::uint64_t> reseats_ = 0;
  std::mutex monitor_mutex_;
  std::unique_ptr<infra::nats::JetStreamConnection> monitor_;  // for Backlog
};

}  // namespace shopcqrs::adapters::nats
