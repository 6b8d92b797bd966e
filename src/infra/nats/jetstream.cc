#include "infra/nats/jetstream.h"

#include <mutex>

#include <fmt/format.h>

namespace shopcqrs::infra::nats {

namespace {

constexpr const char* kExpectedLastSequenceHeader = "Nats-Expected-Last-Sequence";

}  // namespace

void Check(natsStatus status, std::string_view what, jsErrCode js_code) {
  if (status == NATS_OK) return;
  const char* detail = nats_GetLastError(nullptr);
  throw NatsError(fmt::format("{}: {}{}{}", what, natsStatus_GetText(status),
                              detail && *detail ? " -- " : "", detail ? detail : ""),
                  status, static_cast<int>(js_code));
}

std::string_view MessageHeader(natsMsg* message, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(message, key, &value) != NATS_OK || value == nullptr) return {};
  return value;
}

void SetMessageHeader(natsMsg* message, const char* key, const std::string& value) {
  Check(natsMsgHeader_Set(message, key, value.c_str()), "natsMsgHeader_Set");
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

void JetStreamConnection::EnsureStream(const StreamConfig& stream) {
  const std::string& name = stream.name;
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
  std::vector<const char*> subjects;
  for (const auto& subject : stream.subjects) subjects.push_back(subject.c_str());
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = name.c_str();
  config.Description = stream.description.c_str();
  config.Subjects = subjects.data();
  config.SubjectsLen = static_cast<int>(subjects.size());
  config.Storage = js_FileStorage;
  config.Retention = js_LimitsPolicy;
  config.Discard = js_DiscardOld;
  config.MaxMsgs = -1;
  config.MaxBytes = -1;
  config.MaxAge = 0;
  config.Duplicates =
      std::chrono::duration_cast<std::chrono::nanoseconds>(stream.duplicate_window).count();
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
    const std::string id(MessageHeader(message, kMsgIdHeader));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.ExpectLastSeq = expected;
    if (expected == 0) SetMessageHeader(message, kExpectedLastSequenceHeader, "0");
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

}  // namespace shopcqrs::infra::nats
