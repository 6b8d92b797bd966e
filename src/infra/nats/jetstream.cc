#include "infra/nats/jetstream.h"

#include <algorithm>
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

std::vector<std::string> SplitServerUrls(std::string_view urls) {
  std::vector<std::string> list;
  while (true) {
    const auto comma = urls.find(',');
    std::string_view item = urls.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) list.emplace_back(item);
    if (comma == std::string_view::npos) break;
    urls.remove_prefix(comma + 1);
  }
  return list;
}

namespace {

// Called by libnats once it tried every server in the list: the delay before the next round,
// doubling from reconnect_wait up to max_reconnect_wait, with a little jitter.
std::int64_t ReconnectDelay(natsConnection* /*nc*/, int attempts, void* closure) {
  const auto* options = static_cast<const JetStreamConnection::Options*>(closure);
  const std::int64_t base = std::max<std::int64_t>(1, options->reconnect_wait.count());
  const std::int64_t cap = std::max<std::int64_t>(base, options->max_reconnect_wait.count());
  std::int64_t delay = base;
  for (int i = 1; i < attempts && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  return delay + (static_cast<std::int64_t>(attempts) * 7919) % (base / 4 + 1);
}

}  // namespace

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
  const auto urls = SplitServerUrls(options_.url);
  if (urls.size() <= 1) {
    Check(natsOptions_SetURL(opts, options_.url.c_str()), "natsOptions_SetURL");
  } else {
    std::vector<const char*> servers;
    for (const auto& url : urls) servers.push_back(url.c_str());
    Check(natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size())),
          "natsOptions_SetServers");
    // In the order given: the first node is where every client goes while it runs.
    Check(natsOptions_SetNoRandomize(opts, true), "natsOptions_SetNoRandomize");
  }
  Check(natsOptions_SetName(opts, options_.name.c_str()), "natsOptions_SetName");
  Check(natsOptions_SetMaxReconnect(opts, -1), "natsOptions_SetMaxReconnect");
  Check(natsOptions_SetReconnectWait(opts, options_.reconnect_wait.count()),
        "natsOptions_SetReconnectWait");
  // options_ lives as long as the connection (the library calls this from its reconnect thread).
  Check(natsOptions_SetCustomReconnectDelay(opts, &ReconnectDelay, &options_),
        "natsOptions_SetCustomReconnectDelay");
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

void JetStreamConnection::EnsureStream(const StreamConfig& stream, bool reconcile_replicas) {
  const std::string& name = stream.name;
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus status = js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code);
  if (status == NATS_OK) {
    std::unique_ptr<jsStreamInfo, decltype(&jsStreamInfo_Destroy)> owned(info,
                                                                         jsStreamInfo_Destroy);
    const int replicas = info->Config != nullptr
                             ? static_cast<int>(std::max<int64_t>(1, info->Config->Replicas))
                             : 1;
    if (reconcile_replicas && info->Config != nullptr && replicas != stream.replicas) {
      info->Config->Replicas = stream.replicas;
      jsStreamInfo* updated = nullptr;
      code = static_cast<jsErrCode>(0);
      status = js_UpdateStream(&updated, js_, info->Config, nullptr, &code);
      jsStreamInfo_Destroy(updated);
      Check(status, fmt::format("js_UpdateStream {} to {} replicas", name, stream.replicas), code);
    }
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
  config.Replicas = std::max(1, stream.replicas);
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

std::pair<int, std::string> JetStreamConnection::StreamPlacement(std::string_view stream) {
  const std::string name(stream);
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  Check(js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code), "js_GetStreamInfo " + name,
        code);
  std::unique_ptr<jsStreamInfo, decltype(&jsStreamInfo_Destroy)> owned(info, jsStreamInfo_Destroy);
  const int replicas =
      info->Config != nullptr ? static_cast<int>(std::max<int64_t>(1, info->Config->Replicas)) : 1;
  std::string leader;
  if (info->Cluster != nullptr && info->Cluster->Leader != nullptr) leader = info->Cluster->Leader;
  return {replicas, leader};
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
    // Refused ones are counted; after a wait that timed out, any of those sent may be unconfirmed.
    *error = failures > 0 ? fmt::format("{} of {} append(s) refused or failed ({})", failures,
                                        messages.size(), what)
             : status != NATS_OK
                 ? fmt::format("{} of {} append(s) not sent ({})", messages.size() - sent,
                               messages.size(), what)
                 : fmt::format("{} append(s) sent, not all confirmed in time ({})", sent, what);
  }
  return false;
}

}  // namespace shopcqrs::infra::nats
