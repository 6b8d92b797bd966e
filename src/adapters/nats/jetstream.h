#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "cqrs/projector.h"

// The broker leg of the data path: the event log as a JetStream stream.
//
// Stream layout (one stream, file storage, kept like the outbox it mirrors):
//   subject "shopcqrs.events.<EventType>"  one message per outbox row, in (xid, position) order;
//                                          Nats-Msg-Id = the event id, so the broker drops
//                                          duplicates;
//   subject "shopcqrs.bound"               a bound-only message: transactions without events
//                                          finished, so the commit bound moved.
// Every message carries the checkpoint a projection reaches by applying it, in the header
// Shopcqrs-Checkpoint = "<xid>.<position>.<bound>". Messages are only ever appended with the
// expected last sequence of the stream, so the stream is the outbox's order exactly: no gap, no
// duplicate, no reordering, whatever relays crash or race.
namespace shopcqrs::adapters::nats {

inline constexpr std::string_view kDefaultStream = "SHOPCQRS_EVENTS";
inline constexpr std::string_view kEventSubjectPrefix = "shopcqrs.events.";
inline constexpr std::string_view kBoundSubject = "shopcqrs.bound";

// A libnats call failed. `code` is the JetStream error code when the server sent one.
class NatsError : public std::runtime_error {
 public:
  NatsError(const std::string& what, natsStatus status, int js_code = 0)
      : std::runtime_error(what), status_(status), js_code_(js_code) {}
  natsStatus status() const { return status_; }
  int js_code() const { return js_code_; }

 private:
  natsStatus status_;
  int js_code_;
};

// Throws NatsError naming `what` when `status` is not NATS_OK.
void Check(natsStatus status, std::string_view what, jsErrCode js_code = static_cast<jsErrCode>(0));

// The checkpoint header of a stream message; nullopt when it is missing or malformed.
std::optional<cqrs::Checkpoint> MessageCheckpoint(natsMsg* message);
std::string FormatCheckpoint(const cqrs::Checkpoint& checkpoint);
std::optional<cqrs::Checkpoint> ParseCheckpoint(std::string_view text);

// A stream message as built by the relay. Builds a natsMsg the caller owns.
natsMsg* EncodeEvent(const cqrs::StoredEvent& event, const cqrs::Checkpoint& after);
natsMsg* EncodeBound(const cqrs::Checkpoint& after);
// The event a message carries; nullopt for a bound-only message. Throws on a malformed event.
std::optional<cqrs::StoredEvent> DecodeEvent(natsMsg* message);

// (xid, position) order: the order of events in the stream.
inline bool PositionBefore(const cqrs::Checkpoint& a, const cqrs::Checkpoint& b) {
  return a.xid != b.xid ? a.xid < b.xid : a.position < b.position;
}

// One connection to nats-server with its JetStream context. libnats reconnects by itself in
// the background (forever, every reconnect_wait); calls fail while it is disconnected.
class JetStreamConnection {
 public:
  struct Options {
    std::string url = "nats://127.0.0.1:4222";
    std::string name = "shopcqrs";
    std::chrono::milliseconds request_timeout{2000};  // JetStream API calls and publish acks
    std::chrono::milliseconds reconnect_wait{100};
    std::int64_t max_pending_publishes = 16384;
  };
  // Connects (throws NatsError when the server cannot be reached).
  explicit JetStreamConnection(Options options);
  ~JetStreamConnection();
  JetStreamConnection(const JetStreamConnection&) = delete;
  JetStreamConnection& operator=(const JetStreamConnection&) = delete;

  natsConnection* connection() const { return connection_; }
  jsCtx* js() const { return js_; }
  bool IsConnected() const;
  const Options& options() const { return options_; }

  // Creates the event stream if it does not exist (idempotent, safe from several processes).
  void EnsureStream(std::string_view stream);
  // The last sequence of the stream (0 when empty).
  std::uint64_t LastSequence(std::string_view stream);
  // The first sequence still held (1 for a stream that never dropped anything).
  std::uint64_t FirstSequence(std::string_view stream);
  // (first, last) in one request.
  std::pair<std::uint64_t, std::uint64_t> Sequences(std::string_view stream);
  // The message at `sequence` (owned by the caller); nullptr when there is none.
  natsMsg* GetMessage(std::string_view stream, std::uint64_t sequence);

  // Failures of asynchronous publishes since the last call (and the first error text).
  std::int64_t TakePublishFailures(std::string* first_error = nullptr);

 private:
  static void OnPublishError(jsCtx* js, jsPubAckErr* error, void* closure);

  Options options_;
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
  struct Failures;
  std::unique_ptr<Failures> failures_;
};

// Owns a natsMsg.
struct MsgDeleter {
  void operator()(natsMsg* message) const { natsMsg_Destroy(message); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

}  // namespace shopcqrs::adapters::nats
