#include "adapters/nats/jetstream_source.h"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace shopcqrs::adapters::nats {

using namespace infra::nats;

namespace {

// How long a consumer may stay idle while the stream holds more before it is re-seated.
constexpr std::chrono::milliseconds kStallCheck{1000};

std::int64_t Nanos(std::chrono::milliseconds duration) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

bool CheckpointAtOrBefore(const cqrs::Checkpoint& a, const cqrs::Checkpoint& b) {
  if (PositionBefore(a, b)) return true;
  if (PositionBefore(b, a)) return false;
  return a.bound <= b.bound;
}

// The stream sequence of a delivered message, from its ack subject:
//   $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
//   $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<stream seq>.... (newer servers)
std::uint64_t StreamSequence(natsMsg* message) {
  const char* reply = natsMsg_GetReply(message);
  std::string_view text = reply ? reply : "";
  std::vector<std::string_view> tokens;
  while (!text.empty()) {
    const auto dot = text.find('.');
    tokens.push_back(text.substr(0, dot));
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  std::size_t index = 0;
  if (tokens.size() == 9) {
    index = 5;
  } else if (tokens.size() >= 11) {
    index = 7;
  }
  std::uint64_t sequence = 0;
  if (index == 0 || tokens[0] != "$JS" || tokens[1] != "ACK" ||
      std::from_chars(tokens[index].data(), tokens[index].data() + tokens[index].size(), sequence)
              .ec != std::errc()) {
    throw std::runtime_error(
        fmt::format("not a JetStream delivery (reply subject '{}')", reply ? reply : ""));
  }
  return sequence;
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
  idle_since_.reset();
  {
    std::lock_guard lock(ack_mutex_);
    unacked_.clear();
  }
  for (auto* message : buffered_) natsMsg_Destroy(message);
  buffered_.clear();
  if (subscription_) {
    natsSubscription_Unsubscribe(subscription_);  // the durable consumer stays
    natsSubscription_Destroy(subscription_);
    subscription_ = nullptr;
  }
  seated_ = false;
}

void JetStreamSource::Reset() {
  std::lock_guard lock(mutex_);
  DropSubscription();
}

std::uint64_t JetStreamSource::Reseats() const { return reseats_.load(); }

std::int64_t JetStreamSource::Backlog() {
  std::lock_guard lock(monitor_mutex_);
  if (!monitor_ || !monitor_->IsConnected()) {
    auto options = options_.nats;
    options.name += "-monitor";
    monitor_ = std::make_unique<infra::nats::JetStreamConnection>(std::move(options));
  }
  jsConsumerInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus status = js_GetConsumerInfo(&info, monitor_->js(), options_.stream.c_str(),
                                               options_.consumer.c_str(), nullptr, &code);
  Check(status, "js_GetConsumerInfo " + options_.consumer, code);
  std::unique_ptr<jsConsumerInfo, decltype(&jsConsumerInfo_Destroy)> owned(info,
                                                                           jsConsumerInfo_Destroy);
  return static_cast<std::int64_t>(info->NumPending) + info->NumAckPending;
}

std::string JetStreamSource::ConsumerMatches(const cqrs::Checkpoint& after) {
  jsConsumerInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus status = js_GetConsumerInfo(&info, nats_->js(), options_.stream.c_str(),
                                               options_.consumer.c_str(), nullptr, &code);
  if (status == NATS_NOT_FOUND || code == JSConsumerNotFoundErr) return {};
  Check(status, "js_GetConsumerInfo " + options_.consumer, code);
  std::unique_ptr<jsConsumerInfo, decltype(&jsConsumerInfo_Destroy)> owned(info,
                                                                           jsConsumerInfo_Destroy);
  const jsConsumerConfig* config = info->Config;
  if (config == nullptr || config->AckPolicy != js_AckAll || config->DeliverSubject == nullptr ||
      *config->DeliverSubject == '\0') {
    return {};
  }
  // Something delivered but not acked: the store may or may not hold it. Start over exactly.
  if (info->Delivered.Stream != info->AckFloor.Stream) return {};
  const std::uint64_t floor = info->AckFloor.Stream;
  if (floor == 0) {
    if (!(after == cqrs::Checkpoint{})) return {};
  } else {
    MsgPtr message(nats_->GetMessage(options_.stream, floor));
    if (!message) return {};
    const auto checkpoint = MessageCheckpoint(message.get());
    if (!checkpoint || checkpoint->xid != after.xid || checkpoint->position != after.position) {
      return {};
    }
  }
  stream_sequence_ = floor;
  return config->DeliverSubject;
}

std::uint64_t JetStreamSource::FindStart(const cqrs::Checkpoint& after) {
  const auto [first, last] = nats_->Sequences(options_.stream);
  std::uint64_t lo = std::max<std::uint64_t>(1, first);
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

void JetStreamSource::Subscribe(const std::string& deliver_subject) {
  Check(natsConnection_SubscribeSync(&subscription_, nats_->connection(), deliver_subject.c_str()),
        "subscribe to " + deliver_subject);
  // Never drop a delivery on the client (the consumer's max_ack_pending bounds what is in
  // flight); a drop would still be caught as a gap.
  Check(natsSubscription_SetPendingLimits(subscription_, -1, -1), "set pending limits");
}

void JetStreamSource::Seat(const cqrs::Checkpoint& after) {
  DropSubscription();
  EnsureEventStream(*nats_, options_.stream, options_.stream_replicas);
  std::string deliver_subject = ConsumerMatches(after);
  if (deliver_subject.empty()) {
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus deleted = js_DeleteConsumer(nats_->js(), options_.stream.c_str(),
                                                 options_.consumer.c_str(), nullptr, &code);
    if (deleted != NATS_OK && deleted != NATS_NOT_FOUND && code != JSConsumerNotFoundErr) {
      Check(deleted, "js_DeleteConsumer " + options_.consumer, code);
    }
    natsInbox* inbox = nullptr;
    Check(natsInbox_Create(&inbox), "natsInbox_Create");
    deliver_subject = inbox;
    natsInbox_Destroy(inbox);
    jsConsumerConfig config;
    jsConsumerConfig_Init(&config);
    config.Durable = options_.consumer.c_str();
    config.Description = "shopcqrs projection";
    config.DeliverSubject = deliver_subject.c_str();
    config.AckPolicy = js_AckAll;
    config.AckWait = Nanos(options_.ack_wait);
    config.MaxDeliver = -1;
    config.MaxAckPending = options_.max_ack_pending;
    config.ReplayPolicy = js_ReplayInstant;
    std::uint64_t start = 1;
    if (after == cqrs::Checkpoint{}) {
      config.DeliverPolicy = js_DeliverAll;
      start = std::max<std::uint64_t>(1, nats_->FirstSequence(options_.stream));
    } else {
      start = FindStart(after);
      config.DeliverPolicy = js_DeliverByStartSequence;
      config.OptStartSeq = start;
    }
    // Subscribed before the consumer exists, so no delivery goes to nobody.
    Subscribe(deliver_subject);
    jsConsumerInfo* info = nullptr;
    code = static_cast<jsErrCode>(0);
    const natsStatus added =
        js_AddConsumer(&info, nats_->js(), options_.stream.c_str(), &config, nullptr, &code);
    jsConsumerInfo_Destroy(info);
    Check(added, "js_AddConsumer " + options_.consumer, code);
    stream_sequence_ = start - 1;
    ++reseats_;
    spdlog::info("consumer {}: seated at stream message #{} for checkpoint {}", options_.consumer,
                 start, FormatCheckpoint(after));
  } else {
    Subscribe(deliver_subject);
  }
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
  // Whatever the subscription holds right now.
  int pending = 0;
  natsSubscription_GetPending(subscription_, &pending, nullptr);
  for (int i = 0; i < pending && messages.size() < max; ++i) {
    natsMsg* message = nullptr;
    if (natsSubscription_NextMsg(&message, subscription_, 1) != NATS_OK) break;
    messages.push_back(message);
  }

  if (!messages.empty()) idle_since_.reset();
  cqrs::EventBatch batch;
  batch.events.reserve(messages.size());
  std::string ack_subject;
  try {
    std::int64_t dropped = 0;
    natsSubscription_GetDropped(subscription_, &dropped);
    if (dropped > 0) {
      throw std::runtime_error(
          fmt::format("consumer {}: {} deliveries dropped", options_.consumer, dropped));
    }
    for (std::size_t k = 0; k < messages.size(); ++k) {
      natsMsg* message = messages[k];
      const auto sequence = StreamSequence(message);
      // At or below the last sequence taken: a redelivery, unless its content says otherwise.
      const bool redelivered = sequence <= stream_sequence_;
      if (!redelivered && sequence != stream_sequence_ + 1) {
        throw std::runtime_error(
            fmt::format("consumer {}: stream message #{} delivered after #{} (a delivery was "
                        "lost); re-seating",
                        options_.consumer, sequence, stream_sequence_));
      }
      const auto checkpoint = MessageCheckpoint(message);
      if (!checkpoint) {
        throw std::runtime_error(
            fmt::format("stream message #{} has no checkpoint header", sequence));
      }
      Delivery verdict = Delivery::kApplied;
      try {
        verdict = JudgeDelivery(cursor_, *checkpoint, MessagePrev(message), redelivered);
      } catch (const StreamDivergedError&) {
        if (batch.events.empty()) throw;
        // Hand out what came before the break; the next fetch stops at it.
        for (std::size_t rest = messages.size(); rest > k; --rest) {
          buffered_.push_front(messages[rest - 1]);
        }
        messages.resize(k);
        break;
      }
      if (!redelivered) stream_sequence_ = sequence;
      if (verdict == Delivery::kNew) {
        auto event = DecodeEvent(message);
        if (!event) {
          throw std::runtime_error(fmt::format(
              "consumer {}: bound message {} follows an event that was not delivered (cursor {})",
              options_.consumer, FormatCheckpoint(*checkpoint), FormatCheckpoint(cursor_)));
        }
        cursor_.xid = checkpoint->xid;
        cursor_.position = checkpoint->position;
        batch.events.push_back(std::move(*event));
      }
      if (SamePosition(cursor_, *checkpoint)) {
        cursor_.bound = std::max(cursor_.bound, checkpoint->bound);
      }
      ack_subject = natsMsg_GetReply(message);
    }
  } catch (...) {
    for (auto* message : messages) natsMsg_Destroy(message);
    DropSubscription();
    throw;
  }
  for (auto* message : messages) natsMsg_Destroy(message);
  if (!ack_subject.empty()) {
    std::lock_guard ack_lock(ack_mutex_);
    unacked_.emplace_back(cursor_, std::move(ack_subject));
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
  natsMsg* message = nullptr;
  const natsStatus status =
      natsSubscription_NextMsg(&message, subscription_, std::max<std::int64_t>(1, timeout.count()));
  if (status == NATS_OK) {
    buffered_.push_back(message);
    idle_since_.reset();
    return true;
  }
  if (status == NATS_TIMEOUT) {
    // Deliveries lost in flight (nats-server restarted, say) would only come again after the
    // ack wait. A consumer idle while the stream holds more than it delivered is re-seated.
    const auto now = std::chrono::steady_clock::now();
    if (!idle_since_) idle_since_ = now;
    if (now - *idle_since_ >= kStallCheck) {
      idle_since_ = now;
      const auto last = nats_->LastSequence(options_.stream);
      // More than delivered (deliveries lost in flight), or less (the stream was recreated).
      if (last != stream_sequence_) {
        DropSubscription();
        throw std::runtime_error(
            fmt::format("consumer {}: idle at stream message #{} while the stream holds #{}; "
                        "re-seating",
                        options_.consumer, stream_sequence_, last));
      }
    }
    return false;
  }
  Check(status, "wait on consumer " + options_.consumer);
  return false;
}

void JetStreamSource::Acknowledge(const cqrs::Checkpoint& applied) {
  std::string subject;
  {
    std::lock_guard lock(ack_mutex_);
    while (!unacked_.empty() && CheckpointAtOrBefore(unacked_.front().first, applied)) {
      subject = std::move(unacked_.front().second);
      unacked_.pop_front();
    }
  }
  if (subject.empty()) return;
  // Ack all: one ack covers every earlier message. A lost ack only means a redelivery, which
  // FetchBatch skips.
  std::lock_guard lock(mutex_);
  if (!nats_) return;
  const natsStatus status = natsConnection_Publish(nats_->connection(), subject.c_str(), "+ACK", 4);
  if (status != NATS_OK) {
    spdlog::debug("consumer {}: ack failed: {}", options_.consumer, natsStatus_GetText(status));
  }
}

}  // namespace shopcqrs::adapters::nats
