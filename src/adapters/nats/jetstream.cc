#include "adapters/nats/jetstream.h"

#include <charconv>
#include <mutex>

#include <fmt/format.h>

namespace shopcqrs::adapters::nats {

namespace {

constexpr const char* kCheckpointHeader = "Shopcqrs-Checkpoint";
constexpr const char* kPrevHeader = "Shopcqrs-Prev";
constexpr const char* kExpectedLastSequenceHeader = "Nats-Expected-Last-Sequence";
constexpr const char* kTypeHeader = "Shopcqrs-Event-Type";
constexpr const char* kSchemaHeader = "Shopcqrs-Schema-Version";
constexpr const char* kAggregateTypeHeader = "Shopcqrs-Aggregate-Type";
constexpr const char* kAggregateIdHeader = "Shopcqrs-Aggregate-Id";
constexpr const char* kAggregateVersionHeader = "Shopcqrs-Aggregate-Version";
constexpr const char* kOccurredAtHeader = "Shopcqrs-Occurred-At";  // ms since the epoch
constexpr const char* kMsgIdHeader = "Nats-Msg-Id";

template <class T>
bool ParseNumber(std::string_view text, T& value) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

std::string_view Header(natsMsg* message, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(message, key, &value) != NATS_OK || value == nullptr) return {};
  return value;
}

std::string_view RequiredHeader(natsMsg* message, const char* key) {
  auto value = Header(message, key);
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

void SetHeader(natsMsg* message, const char* key, const std::string& value) {
  Check(natsMsgHeader_Set(message, key, value.c_str()), "natsMsgHeader_Set");
}

}  // namespace

void Check(natsStatus status, std::string_view what, jsErrCode js_code) {
  if (status == NATS_OK) return;
  const char* detail = nats_GetLastError(nullptr);
  throw NatsError(fmt::format("{}: {}{}{}", what, natsStatus_GetText(status),
                              detail && *detail ? " -- " : "", detail ? detail : ""),
                  status, static_cast<int>(js_code));
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
  return ParseCheckpoint(Header(message, kCheckpointHeader));
}

std::optional<cqrs::Checkpoint> MessagePrev(natsMsg* message) {
  const auto text = Header(message, kPrevHeader);
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
  SetHeader(message, kMsgIdHeader, e.event_id);
  SetHeader(message, kCheckpointHeader, FormatCheckpoint(after));
  SetHeader(message, kPrevHeader, FormatCheckpoint(prev));
  SetHeader(message, kTypeHeader, e.type);
  SetHeader(message, kSchemaHeader, std::to_string(e.schema_version));
  SetHeader(message, kAggregateTypeHeader, e.aggregate_type);
  SetHeader(message, kAggregateIdHeader, e.aggregate_id);
  SetHeader(message, kAggregateVersionHeader, std::to_string(e.aggregate_version));
  SetHeader(message, kOccurredAtHeader, std::to_string(e.occurred_at.time_since_epoch().count()));
  return owned.release();
}

natsMsg* EncodeBound(const cqrs::Checkpoint& after, const cqrs::Checkpoint& prev) {
  natsMsg* message = nullptr;
  const std::string subject(kBoundSubject);
  Check(natsMsg_Create(&message, subject.c_str(), nullptr, nullptr, 0), "natsMsg_Create");
  MsgPtr owned(message);
  // The id makes a bound message from a relay that lost a race a duplicate too.
  SetHeader(message, kMsgIdHeader, "bound-" + FormatCheckpoint(after));
  SetHeader(message, kCheckpointHeader, FormatCheckpoint(after));
  SetHeader(message, kPrevHeader, FormatCheckpoint(prev));
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

struct JetStreamConnection::Failures {
  std::mutex mutex;
  std::int64_t count = 0;
  std::string first;
};

JetStreamConnection::JetStreamConnection(Options options)
    : options_(std::move(options)), failures_(std::make_unique<Failures>()) {
  natsOptions* opts = nullptr;
  Check(natsOptions_Create(&opts), "natsOptions_Create");
  std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> owned(opts, natsOptions_Destroy);
  Check(natsOptions_SetURL(opts, options_.url.c_str()), "natsOptions_SetURL");
  Check(natsOptions_SetName(opts, options_.name.c_str()), "natsOptions_SetName");
  Check(natsOptions_SetMaxReconnect(opts, -1), "natsOptions_SetMaxReconnect");
  Check(natsOptions_SetReconnectWait(opts, options_.reconnect_wait.count()),
        "natsOptions_SetReconnectWait");
  Check(natsOptions_SetTimeout(opts, 2000), "natsOptions_SetTimeout");
  Check(natsConnection_Connect(&connection_, opts),
        fmt::format("cannot connect to nats-server at {}", options_.url));

  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = options_.request_timeout.count();
  js_options.PublishAsync.MaxPending = options_.max_pending_publishes;
  js_options.PublishAsync.ErrHandler = &JetStreamConnection::OnPublishError;
  js_options.PublishAsync.ErrHandlerClosure = failures_.get();
  const natsStatus status = natsConnection_JetStream(&js_, connection_, &js_options);
  if (status != NATS_OK) {
    natsConnection_Destroy(connection_);
    Check(status, "natsConnection_JetStream");
  }
}

JetStreamConnection::~JetStreamConnection() {
  jsCtx_Destroy(js_);
  natsConnection_Destroy(connection_);
}

bool JetStreamConnection::IsConnected() const {
  return natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
}

void JetStreamConnection::OnPublishError(jsCtx* /*js*/, jsPubAckErr* error, void* closure) {
  auto* failures = static_cast<Failures*>(closure);
  std::lock_guard lock(failures->mutex);
  if (failures->count++ == 0) {
    failures->first =
        fmt::format("{} (js code {}): {}", natsStatus_GetText(error->Err),
                    static_cast<int>(error->ErrCode), error->ErrText ? error->ErrText : "");
  }
  // The library destroys error->Msg after the callback returns (we do not resend it).
}

std::int64_t JetStreamConnection::TakePublishFailures(std::string* first_error) {
  std::lock_guard lock(failures_->mutex);
  const auto count = failures_->count;
  if (first_error) *first_error = failures_->first;
  failures_->count = 0;
  failures_->first.clear();
  return count;
}

void JetStreamConnection::EnsureStream(std::string_view stream) {
  const std::string name(stream);
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus status = js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code);
  if (status == NATS_OK) {
    jsStreamInfo_Destroy(info);
    return;
  }
  if (status != NATS_NOT_FOUND && code != JSStreamNotFoundErr) {
    Check(status, "js_GetStreamInfo " + name, code);
  }
  const std::string events = fmt::format("{}>", kEventSubjectPrefix);
  const std::string bound(kBoundSubject);
  const char* subjects[] = {events.c_str(), bound.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = name.c_str();
  config.Description = "shopcqrs event log, in outbox commit order";
  config.Subjects = subjects;
  config.SubjectsLen = 2;
  config.Storage = js_FileStorage;
  config.Retention = js_LimitsPolicy;
  config.Discard = js_DiscardOld;
  config.MaxMsgs = -1;
  config.MaxBytes = -1;
  config.MaxAge = 0;
  config.Duplicates = static_cast<std::int64_t>(120) * 1'000'000'000;  // 2 min, in ns
  info = nullptr;
  status = js_AddStream(&info, js_, &config, nullptr, &code);
  jsStreamInfo_Destroy(info);
  // Another process may have created it meanwhile (same configuration: not an error).
  if (status != NATS_OK) {
    jsStreamInfo* existing = nullptr;
    if (js_GetStreamInfo(&existing, js_, name.c_str(), nullptr, nullptr) == NATS_OK) {
      jsStreamInfo_Destroy(existing);
      return;
    }
    Check(status, "js_AddStream " + name, code);
  }
}

std::pair<std::uint64_t, std::uint64_t> JetStreamConnection::Sequences(std::string_view stream) {
  const std::string name(stream);
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  Check(js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code), "js_GetStreamInfo " + name,
        code);
  const std::pair sequences{info->State.FirstSeq, info->State.LastSeq};
  jsStreamInfo_Destroy(info);
  return sequences;
}

std::uint64_t JetStreamConnection::LastSequence(std::string_view stream) {
  return Sequences(stream).second;
}

std::uint64_t JetStreamConnection::FirstSequence(std::string_view stream) {
  return Sequences(stream).first;
}

natsMsg* JetStreamConnection::GetMessage(std::string_view stream, std::uint64_t sequence) {
  const std::string name(stream);
  natsMsg* message = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus status = js_GetMsg(&message, js_, name.c_str(), sequence, nullptr, &code);
  if (status == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return nullptr;
  Check(status, fmt::format("js_GetMsg {} #{}", name, sequence), code);
  return message;
}

bool AppendChain(JetStreamConnection& nats, std::vector<natsMsg*>& messages,
                 std::uint64_t last_sequence, std::string* error) {
  jsCtx* js = nats.js();
  std::uint64_t expected = last_sequence;
  std::string previous_id;  // of the message before in this run
  natsStatus status = NATS_OK;
  std::size_t sent = 0;
  for (auto*& message : messages) {
    const std::string id(Header(message, kMsgIdHeader));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.ExpectLastSeq = expected;
    if (expected == 0) SetHeader(message, kExpectedLastSequenceHeader, "0");
    if (!previous_id.empty()) po.ExpectLastMsgId = previous_id.c_str();
    status = js_PublishMsgAsync(js, &message, &po);
    natsMsg_Destroy(message);  // no-op when the library took it
    message = nullptr;
    if (status != NATS_OK) break;
    previous_id = id;
    ++expected;
    ++sent;
  }
  for (auto*& message : messages) {
    natsMsg_Destroy(message);
    message = nullptr;
  }
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = nats.options().request_timeout.count();
  const natsStatus completed = sent > 0 ? js_PublishAsyncComplete(js, &wait) : NATS_OK;
  std::string first_error;
  const auto failures = nats.TakePublishFailures(&first_error);
  if (status == NATS_OK && completed == NATS_OK && failures == 0) return true;
  if (error) {
    const std::string what = failures > 0        ? first_error
                             : status != NATS_OK ? natsStatus_GetText(status)
                                                 : natsStatus_GetText(completed);
    *error =
        fmt::format("{} of {} append(s) not confirmed ({})",
                    failures > 0 ? failures : static_cast<std::int64_t>(messages.size() - sent),
                    messages.size(), what);
  }
  return false;
}

}  // namespace shopcqrs::adapters::nats
