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
#include <vector>

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
// Shopcqrs-Checkpoint = "<xid>.<position>.<bound>", and names its predecessor's checkpoint in
// Shopcqrs-Prev ("0.0.0" for the first message of the stream). Messages are only ever appended
// with the expected last sequence of the stream and, after the first of an append run, the
// expected last message id, so the stream is the outbox's order exactly: no gap, no duplicate,
// no reordering, whatever relays crash or race. The chain makes a hole detectable wherever it
// appears, whatever the sequence numbers say: every consumer checks that each new message names
// the checkpoint it stands at (JudgeDelivery).
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
// The predecessor a message names (Shopcqrs-Prev); nullopt when it has none (a message appended
// before messages were chained). Throws std::runtime_error when the header is malformed.
std::optional<cqrs::Checkpoint> MessagePrev(natsMsg* message);
std::string FormatCheckpoint(const cqrs::Checkpoint& checkpoint);
std::optional<cqrs::Checkpoint> ParseCheckpoint(std::string_view text);

// A stream message as built by the relay: `after` is the checkpoint it leads to, `prev` the one
// of the message it follows. Builds a natsMsg the caller owns.
natsMsg* EncodeEvent(const cqrs::StoredEvent& event, const cqrs::Checkpoint& after,
                     const cqrs::Checkpoint& prev);
natsMsg* EncodeBound(const cqrs::Checkpoint& after, const cqrs::Checkpoint& prev);
// The event a message carries; nullopt for a bound-only message. Throws on a malformed event.
std::optional<cqrs::StoredEvent> DecodeEvent(natsMsg* message);

// (xid, position) order: the order of events in the stream.
inline bool PositionBefore(const cqrs::Checkpoint& a, const cqrs::Checkpoint& b) {
  return a.xid != b.xid ? a.xid < b.xid : a.position < b.position;
}
inline bool SamePosition(const cqrs::Checkpoint& a, const cqrs::Checkpoint& b) {
  return a.xid == b.xid && a.position == b.position;
}

// The stream does not continue from where a consumer stands: a message after the consumer's
// checkpoint names another predecessor (a hole, or a tail that was rewritten), so the stream no
// longer holds what follows the store's checkpoint. No re-seat can cure it: the projection stops
// loudly instead of reading past it.
class StreamDivergedError : public cqrs::FatalProjectionError {
 public:
  using cqrs::FatalProjectionError::FatalProjectionError;
};

// What a consumer standing at `cursor` does with a delivered message (`checkpoint`, `prev` from
// its headers; `redelivered`: its stream sequence is not above the last one taken):
//   kNew       it is after the cursor and names the cursor as its predecessor: apply it;
//   kApplied   it is at or before the cursor: already applied (a redelivery, or a message before
//              the store's checkpoint where a consumer was seated), skip it.
// A message after the cursor that names another predecessor throws StreamDivergedError; one that
// comes as a redelivery but carries content after the cursor (the stream's tail was rewritten
// under the consumer) throws std::runtime_error, so the consumer is re-seated by position. A
// message without a predecessor (appended before chaining) is judged by position alone.
enum class Delivery { kNew, kApplied };
Delivery JudgeDelivery(const cqrs::Checkpoint& cursor, const cqrs::Checkpoint& checkpoint,
                       const std::optional<cqrs::Checkpoint>& prev, bool redelivered);

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

// Appends `messages` (taken: destroyed or handed to the library) to `stream` after its message
// `last_sequence`, published asynchronously and then waited for. The first carries the expected
// last sequence (0 for an empty stream, sent as the header too, since the library omits a zero
// expectation), every later one the expected sequence and the expected last message id of its
// predecessor in the run: once one append is refused, no later one can be stored (a foreign
// message that took its place does not satisfy the next one's expectation). Answers whether
// every append was confirmed; otherwise `error` says why and the stream's end must be re-read.
bool AppendChain(JetStreamConnection& nats, std::vector<natsMsg*>& messages,
                 std::uint64_t last_sequence, std::string* error);

}  // namespace shopcqrs::adapters::nats
