#include "adapters/nats/jetstream_source.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace shopcqrs::adapters::nats {

namespace {

// How long a no-wait fetch may take to answer "nothing more" (it normally takes one round trip).
constexpr std::chrono::milliseconds kNoWaitExpiry{2000};

std::int64_t Nanos(std::chrono::milliseconds duration) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

// Takes the messages out of a fetched list (the caller owns them) and frees the list.
std::vector<natsMsg*> TakeMessages(natsMsgList& list) {
  std::vector<natsMsg*> messages;
  messages.reserve(static_cast<std::size_t>(std::max(list.Count, 0)));
  for (int i = 0; i < list.Count; ++i) {
    messages.push_back(list.Msgs[i]);
    list.Msgs[i] = nullptr;
  }
  natsMsgList_Destroy(&list);
  return messages;
}

bool CheckpointAtOrBefore(const cqrs::Checkpoint& a, const cqrs::Checkpoint& b) {
  if (PositionBefore(a, b)) return true;
  if (PositionBefore(b, a)) return false;
  return a.bound <= b.bound;
}

}  // namespace

JetStreamSource::JetStreamSource(Options options) : options_(std::move(options)) {
  if (options_.consumer.empty() || options_.consumer.find_first_of(".*> \t") != std::string::npos) {
    throw std::invalid_argument("invalid JetStream consumer name: '" + options_.consumer + "'");
  }
}

JetStreamSource::~JetStreamSource() {
  std::lock_guard lock(mutex_);
  DropSubscription();
  // Acks are published asynchronously: send the last ones before the connection goes, so a
  // restart finds the consumer exactly at the store's checkpoint.
  if (nats_) natsConnection_FlushTimeout(nats_->connection(), 1000);
}

void JetStreamSource::EnsureConnected() {
  if (nats_ && natsConnection_IsClosed(nats_->connection())) {
    DropSubscription();
    nats_.reset();
  }
  if (!nats_) {
    nats_ = std::make_unique<JetStreamConnection>(options_.nats);
    seated_ = false;
  }
}

void JetStreamSource::DropSubscription() {
  {
    std::lock_guard lock(ack_mutex_);
    for (auto& [checkpoint, message] : unacked_) natsMsg_Destroy(message);
    unacked_.clear();
  }
  for (auto* message : buffered_) natsMsg_Destroy(message);
  buffered_.clear();
  if (subscription_) {
    natsSubscription_Destroy(subscription_);  // keeps the durable consumer
    subscription_ = nullptr;
  }
  seated_ = false;
}

void JetStreamSource::Reset() {
  std::lock_guard lock(mutex_);
  DropSubscription();
}

std::uint64_t JetStreamSource::Reseats() const { return reseats_.load(); }

bool JetStreamSource::ConsumerMatches(const cqrs::Checkpoint& after) {
  jsConsumerInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus status = js_GetConsumerInfo(&info, nats_->js(), options_.stream.c_str(),
                                               options_.consumer.c_str(), nullptr, &code);
  if (status == NATS_NOT_FOUND || code == JSConsumerNotFoundErr) return false;
  Check(status, "js_GetConsumerInfo " + options_.consumer, code);
  std::unique_ptr<jsConsumerInfo, decltype(&jsConsumerInfo_Destroy)> owned(info,
                                                                           jsConsumerInfo_Destroy);
  if (info->Config == nullptr || info->Config->AckPolicy != js_AckAll) return false;
  // Something delivered but not acked: the store may or may not hold it. Start over exactly.
  if (info->Delivered.Stream != info->AckFloor.Stream) return false;
  const std::uint64_t floor = info->AckFloor.Stream;
  if (floor == 0) return after == cqrs::Checkpoint{};
  MsgPtr message(nats_->GetMessage(options_.stream, floor));
  if (!message) return false;
  const auto checkpoint = MessageCheckpoint(message.get());
  return checkpoint && checkpoint->xid == after.xid && checkpoint->position == after.position;
}

std::uint64_t JetStreamSource::FindStart(const cqrs::Checkpoint& after) {
  const std::uint64_t last = nats_->LastSequence(options_.stream);
  std::uint64_t lo = std::max<std::uint64_t>(1, nats_->FirstSequence(options_.stream));
  std::uint64_t hi = last + 1;
  // The first message whose (xid, position) is not before the checkpoint: stream order is
  // checkpoint order, so everything before it is applied.
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    MsgPtr message(nats_->GetMessage(options_.stream, mid));
    if (!message) throw std::runtime_error(fmt::format("stream message #{} is missing", mid));
    const auto checkpoint = MessageCheckpoint(message.get());
    if (!checkpoint) {
      throw std::runtime_error(fmt::format("stream message #{} has no checkpoint header", mid));
    }
    if (PositionBefore(*checkpoint, after)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

void JetStreamSource::Subscribe() {
  jsSubOptions sub_options;
  jsSubOptions_Init(&sub_options);
  sub_options.Stream = options_.stream.c_str();
  sub_options.Consumer = options_.consumer.c_str();
  sub_options.ManualAck = true;
  jsErrCode code = static_cast<jsErrCode>(0);
  const std::string subject = "shopcqrs.>";
  Check(js_PullSubscribe(&subscription_, nats_->js(), subject.c_str(), options_.consumer.c_str(),
                         nullptr, &sub_options, &code),
        "js_PullSubscribe " + options_.consumer, code);
}

void JetStreamSource::Seat(const cqrs::Checkpoint& after) {
  DropSubscription();
  nats_->EnsureStream(options_.stream);
  if (!ConsumerMatches(after)) {
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus deleted = js_DeleteConsumer(nats_->js(), options_.stream.c_str(),
                                                 options_.consumer.c_str(), nullptr, &code);
    if (deleted != NATS_OK && deleted != NATS_NOT_FOUND && code != JSConsumerNotFoundErr) {
      Check(deleted, "js_DeleteConsumer " + options_.consumer, code);
    }
    jsConsumerConfig config;
    jsConsumerConfig_Init(&config);
    config.Durable = options_.consumer.c_str();
    config.Description = "shopcqrs projection";
    config.AckPolicy = js_AckAll;
    config.AckWait = Nanos(options_.ack_wait);
    config.MaxDeliver = -1;
    config.MaxAckPending = options_.max_ack_pending;
    config.ReplayPolicy = js_ReplayInstant;
    std::uint64_t start = 0;
    if (after == cqrs::Checkpoint{}) {
      config.DeliverPolicy = js_DeliverAll;
    } else {
      start = FindStart(after);
      config.DeliverPolicy = js_DeliverByStartSequence;
      config.OptStartSeq = start;
    }
    jsConsumerInfo* info = nullptr;
    code = static_cast<jsErrCode>(0);
    const natsStatus added =
        js_AddConsumer(&info, nats_->js(), options_.stream.c_str(), &config, nullptr, &code);
    jsConsumerInfo_Destroy(info);
    Check(added, "js_AddConsumer " + options_.consumer, code);
    ++reseats_;
    spdlog::info("consumer {}: seated at stream message #{} for checkpoint {}", options_.consumer,
                 start == 0 ? 1 : start, FormatCheckpoint(after));
  }
  Subscribe();
  cursor_ = after;
  seated_ = true;
}

cqrs::EventBatch JetStreamSource::FetchBatch(const cqrs::Checkpoint& after, std::size_t max) {
  std::lock_guard lock(mutex_);
  EnsureConnected();
  if (!seated_ || after != cursor_) Seat(after);

  std::vector<natsMsg*> messages;
  while (!buffered_.empty() && messages.size() < max) {
    messages.push_back(buffered_.front());
    buffered_.pop_front();
  }
  if (messages.size() < max) {
    jsFetchRequest request;
    jsFetchRequest_Init(&request);
    request.Batch = static_cast<int>(std::min<std::size_t>(max - messages.size(), 1 << 20));
    request.NoWait = true;
    request.Expires = Nanos(kNoWaitExpiry);
    natsMsgList list;
    const natsStatus status = natsSubscription_FetchRequest(&list, subscription_, &request);
    if (status == NATS_OK) {
      for (auto* message : TakeMessages(list)) messages.push_back(message);
    } else if (status != NATS_NOT_FOUND && status != NATS_TIMEOUT) {
      for (auto* message : messages) natsMsg_Destroy(message);
      Check(status, "fetch from consumer " + options_.consumer);
    }
  }

  cqrs::EventBatch batch;
  batch.events.reserve(messages.size());
  natsMsg* last = nullptr;
  try {
    for (auto* message : messages) {
      const auto checkpoint = MessageCheckpoint(message);
      if (!checkpoint) {
        throw std::runtime_error(
            fmt::format("message on {} has no checkpoint header", natsMsg_GetSubject(message)));
      }
      auto event = DecodeEvent(message);
      if (event) {
        if (PositionBefore(cursor_, *checkpoint)) {
          cursor_.xid = checkpoint->xid;
          cursor_.position = checkpoint->position;
          batch.events.push_back(std::move(*event));
        }
        // else: a redelivery of an applied event
      } else if (PositionBefore(cursor_, *checkpoint)) {
        // A bound message names the last event before it: that event was not delivered.
        throw std::runtime_error(fmt::format(
            "consumer {}: bound message {} follows an event that was not delivered (cursor {})",
            options_.consumer, FormatCheckpoint(*checkpoint), FormatCheckpoint(cursor_)));
      }
      if (!PositionBefore(cursor_, *checkpoint)) {
        cursor_.bound = std::max(cursor_.bound, checkpoint->bound);
      }
      if (last) natsMsg_Destroy(last);
      last = message;
    }
  } catch (...) {
    for (auto* message : messages) natsMsg_Destroy(message);
    seated_ = false;
    throw;
  }
  if (last) {
    std::lock_guard ack_lock(ack_mutex_);
    unacked_.emplace_back(cursor_, last);
  }
  batch.next = cursor_;
  return batch;
}

bool JetStreamSource::WaitForChange(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!buffered_.empty()) return true;
  if (!subscription_ || !seated_) {
    lock.unlock();
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(50)));
    return false;
  }
  // One message, waiting up to `timeout`: returns as soon as the broker has something.
  jsFetchRequest request;
  jsFetchRequest_Init(&request);
  request.Batch = 1;
  request.Expires = Nanos(std::max(timeout, std::chrono::milliseconds(1)));
  natsMsgList list;
  const natsStatus status = natsSubscription_FetchRequest(&list, subscription_, &request);
  if (status == NATS_OK) {
    for (auto* message : TakeMessages(list)) buffered_.push_back(message);
    return !buffered_.empty();
  }
  if (status == NATS_TIMEOUT || status == NATS_NOT_FOUND) return false;
  Check(status, "wait on consumer " + options_.consumer);
  return false;
}

void JetStreamSource::Acknowledge(const cqrs::Checkpoint& applied) {
  natsMsg* to_ack = nullptr;
  {
    std::lock_guard lock(ack_mutex_);
    while (!unacked_.empty() && CheckpointAtOrBefore(unacked_.front().first, applied)) {
      natsMsg_Destroy(to_ack);
      to_ack = unacked_.front().second;
      unacked_.pop_front();
    }
  }
  if (!to_ack) return;
  // Ack all: one ack covers every earlier message. A lost ack only means a redelivery, which
  // FetchBatch skips.
  const natsStatus status = natsMsg_Ack(to_ack, nullptr);
  if (status != NATS_OK) {
    spdlog::debug("consumer {}: ack failed: {}", options_.consumer, natsStatus_GetText(status));
  }
  natsMsg_Destroy(to_ack);
}

}  // namespace shopcqrs::adapters::nats
