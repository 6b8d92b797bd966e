#pragma once

#include <nats/nats.h>

#include <optional>
#include <string>
#include <string_view>

#include "cqrs/projector.h"
#include "infra/nats/jetstream.h"

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
// expected last message id (infra::nats::AppendChain), so the stream is the outbox's order
// exactly: no gap, no duplicate, no reordering, whatever relays crash or race. The chain makes a
// hole detectable wherever it appears, whatever the sequence numbers say: every consumer checks
// that each new message names the checkpoint it stands at (JudgeDelivery).
namespace shopcqrs::adapters::nats {

inline constexpr std::string_view kDefaultStream = "SHOPCQRS_EVENTS";
inline constexpr std::string_view kEventSubjectPrefix = "shopcqrs.events.";
inline constexpr std::string_view kBoundSubject = "shopcqrs.bound";

// Creates the event stream `stream` (the subjects above) if it does not exist, held by
// `replicas` servers of a JetStream cluster (1: a single server). With `reconcile_replicas`
// (the relay, which owns the stream), an existing stream is moved to `replicas` if it has others.
void EnsureEventStream(infra::nats::JetStreamConnection& nats, std::string_view stream,
                       int replicas = 1, bool reconcile_replicas = false);

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

}  // namespace shopcqrs::adapters::nats
