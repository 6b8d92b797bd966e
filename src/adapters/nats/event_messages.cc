#include "adapters/nats/event_messages.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>

namespace shopcqrs::adapters::nats {

using namespace infra::nats;

namespace {

constexpr const char* kCheckpointHeader = "Shopcqrs-Checkpoint";
constexpr const char* kPrevHeader = "Shopcqrs-Prev";
constexpr const char* kTypeHeader = "Shopcqrs-Event-Type";
constexpr const char* kSchemaHeader = "Shopcqrs-Schema-Version";
constexpr const char* kAggregateTypeHeader = "Shopcqrs-Aggregate-Type";
constexpr const char* kAggregateIdHeader = "Shopcqrs-Aggregate-Id";
constexpr const char* kAggregateVersionHeader = "Shopcqrs-Aggregate-Version";
constexpr const char* kOccurredAtHeader = "Shopcqrs-Occurred-At";  // ms since the epoch

template <class T>
bool ParseNumber(std::string_view text, T& value) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

std::string_view RequiredHeader(natsMsg* message, const char* key) {
  auto value = MessageHeader(message, key);
  if (value.empty()) {
    throw std::runtime_error(
        fmt::format("stream message on {} lacks header {}", natsMsg_GetSubject(message), key));
  }
  return value;
}

template <class T>
T NumberHeader(natsMsg* message, const char* key) {
  T value{};
  const auto text = RequiredHeader(message, key);
  if (!ParseNumber(text, value)) {
    throw std::runtime_error(
        fmt::format("stream message header {} is not a number: {}", key, text));
  }
  return value;
}

}  // namespace

void EnsureEventStream(infra::nats::JetStreamConnection& nats, std::string_view stream,
                       int replicas, bool reconcile_replicas) {
  nats.EnsureStream(
      {.name = std::string(stream),
       .subjects = {fmt::format("{}>", kEventSubjectPrefix), std::string(kBoundSubject)},
       .description = "shopcqrs event log, in outbox commit order",
       .replicas = replicas},
      reconcile_replicas);
}

std::string FormatCheckpoint(const cqrs::Checkpoint& checkpoint) {
  return fmt::format("{}.{}.{}", checkpoint.xid, checkpoint.position, checkpoint.bound);
}

std::optional<cqrs::Checkpoint> ParseCheckpoint(std::string_view text) {
  const auto first = text.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = text.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  cqrs::Checkpoint checkpoint;
  if (!ParseNumber(text.substr(0, first), checkpoint.xid) ||
      !ParseNumber(text.substr(first + 1, second - first - 1), checkpoint.position) ||
      !ParseNumber(text.substr(second + 1), checkpoint.bound)) {
    return std::nullopt;
  }
  return checkpoint;
}

std::optional<cqrs::Checkpoint> MessageCheckpoint(natsMsg* message) {
  return ParseCheckpoint(MessageHeader(message, kCheckpointHeader));
}

std::optional<cqrs::Checkpoint> MessagePrev(natsMsg* message) {
  const auto text = MessageHeader(message, kPrevHeader);
  if (text.empty()) return std::nullopt;
  auto prev = ParseCheckpoint(text);
  if (!prev) throw std::runtime_error(fmt::format("malformed {} header: '{}'", kPrevHeader, text));
  return prev;
}

Delivery JudgeDelivery(const cqrs::Checkpoint& cursor, const cqrs::Checkpoint& checkpoint,
                       const std::optional<cqrs::Checkpoint>& prev, bool redelivered) {
  if (!PositionBefore(cursor, checkpoint)) return Delivery::kApplied;
  if (redelivered) {
    throw std::runtime_error(fmt::format(
        "a redelivered stream message carries {}, after the checkpoint {}: the stream's tail "
        "was rewritten; re-seating",
        FormatCheckpoint(checkpoint), FormatCheckpoint(cursor)));
  }
  if (prev && !SamePosition(*prev, cursor)) {
    throw StreamDivergedError(fmt::format(
        "the stream does not continue from checkpoint {}: the next message ({}) follows {}; "
        "events between them are missing from the stream",
        FormatCheckpoint(cursor), FormatCheckpoint(checkpoint), FormatCheckpoint(*prev)));
  }
  return Delivery::kNew;
}

natsMsg* EncodeEvent(const cqrs::StoredEvent& event, const cqrs::Checkpoint& after,
                     const cqrs::Checkpoint& prev) {
  const auto& e = event.envelope;
  const std::string subject = fmt::format("{}{}", kEventSubjectPrefix, e.type);
  natsMsg* message = nullptr;
  Check(natsMsg_Create(&message, subject.c_str(), nullptr, e.payload.data(),
                       static_cast<int>(e.payload.size())),
        "natsMsg_Create");
  MsgPtr owned(message);
  SetMessageHeader(message, kMsgIdHeader, e.event_id);
  SetMessageHeader(message, kCheckpointHeader, FormatCheckpoint(after));
  SetMessageHeader(message, kPrevHeader, FormatCheckpoint(prev));
  SetMessageHeader(message, kTypeHeader, e.type);
  SetMessageHeader(message, kSchemaHeader, std::to_string(e.schema_version));
  SetMessageHeader(message, kAggregateTypeHeader, e.aggregate_type);
  SetMessageHeader(message, kAggregateIdHeader, e.aggregate_id);
  SetMessageHeader(message, kAggregateVersionHeader, std::to_string(e.aggregate_version));
  SetMessageHeader(message, kOccurredAtHeader,
                   std::to_string(e.occurred_at.time_since_epoch().count()));
  return owned.release();
}

natsMsg* EncodeBound(const cqrs::Checkpoint& after, const cqrs::Checkpoint& prev) {
  natsMsg* message = nullptr;
  const std::string subject(kBoundSubject);
  Check(natsMsg_Create(&message, subject.c_str(), nullptr, nullptr, 0), "natsMsg_Create");
  MsgPtr owned(message);
  // The id makes a bound message from a relay that lost a race a duplicate too.
  SetMessageHeader(message, kMsgIdHeader, "bound-" + FormatCheckpoint(after));
  SetMessageHeader(message, kCheckpointHeader, FormatCheckpoint(after));
  SetMessageHeader(message, kPrevHeader, FormatCheckpoint(prev));
  return owned.release();
}

std::optional<cqrs::StoredEvent> DecodeEvent(natsMsg* message) {
  const std::string_view subject = natsMsg_GetSubject(message);
  if (subject == kBoundSubject) return std::nullopt;
  if (!subject.starts_with(kEventSubjectPrefix)) {
    throw std::runtime_error(fmt::format("unexpected subject in the event stream: {}", subject));
  }
  auto checkpoint = MessageCheckpoint(message);
  if (!checkpoint) throw std::runtime_error("stream message without a valid checkpoint header");
  cqrs::StoredEvent event;
  event.xid = checkpoint->xid;
  event.position = checkpoint->position;
  auto& e = event.envelope;
  e.event_id = std::string(RequiredHeader(message, kMsgIdHeader));
  e.type = std::string(RequiredHeader(message, kTypeHeader));
  e.schema_version = NumberHeader<int>(message, kSchemaHeader);
  e.aggregate_type = std::string(RequiredHeader(message, kAggregateTypeHeader));
  e.aggregate_id = std::string(RequiredHeader(message, kAggregateIdHeader));
  e.aggregate_version = NumberHeader<std::int64_t>(message, kAggregateVersionHeader);
  e.occurred_at = cqrs::TimePoint(
      std::chrono::milliseconds(NumberHeader<std::int64_t>(message, kOccurredAtHeader)));
  if (const char* data = natsMsg_GetData(message)) {
    e.payload.assign(data, static_cast<std::size_t>(natsMsg_GetDataLength(message)));
  }
  event.committed_at = e.occurred_at;
  return event;
}

}  // namespace shopcqrs::adapters::nats
