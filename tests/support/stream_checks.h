#pragma once

// The event stream against the outbox it mirrors: every outbox event exactly once, in
// (xid, position) order, each message naming its predecessor (adapters/nats/event_messages.h).

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nats/nats.h>

#include "adapters/nats/event_messages.h"
#include "cqrs/projector.h"
#include "infra/nats/jetstream.h"
#include "support/sql.h"

namespace shopcqrs::test_support {

struct StreamEntry {
  bool event = false;
  std::string id;  // Nats-Msg-Id
  cqrs::Checkpoint checkpoint;
  std::optional<cqrs::Checkpoint> prev;  // the predecessor it names
};

// Every message of the stream, in sequence order (read through a connection with `options`).
inline std::vector<StreamEntry> ReadStream(
    const infra::nats::JetStreamConnection::Options& options) {
  infra::nats::JetStreamConnection connection(options);
  const auto stream = std::string(adapters::nats::kDefaultStream);
  const auto last = connection.LastSequence(stream);
  std::vector<StreamEntry> entries;
  for (std::uint64_t seq = 1; seq <= last; ++seq) {
    infra::nats::MsgPtr message(connection.GetMessage(stream, seq));
    EXPECT_TRUE(message) << "stream message #" << seq << " missing";
    if (!message) continue;
    StreamEntry entry;
    auto event = adapters::nats::DecodeEvent(message.get());
    entry.event = event.has_value();
    const char* id = nullptr;
    if (natsMsgHeader_Get(message.get(), "Nats-Msg-Id", &id) == NATS_OK && id) entry.id = id;
    auto checkpoint = adapters::nats::MessageCheckpoint(message.get());
    EXPECT_TRUE(checkpoint) << "#" << seq;
    if (checkpoint) entry.checkpoint = *checkpoint;
    entry.prev = adapters::nats::MessagePrev(message.get());
    if (event) {
      EXPECT_EQ(event->envelope.event_id, entry.id);
      EXPECT_EQ(event->xid, entry.checkpoint.xid);
      EXPECT_EQ(event->position, entry.checkpoint.position);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

// The stream holds every outbox event exactly once, in (xid, position) order, with bounds that
// never go back; a bound message names the event before it.
inline void ExpectStreamMirrorsOutbox(const infra::nats::JetStreamConnection::Options& options,
                                      const std::string& write) {
  const auto outbox = Column(write, "SELECT event_id::text FROM outbox ORDER BY xid, position");
  const auto entries = ReadStream(options);
  std::vector<std::string> events;
  cqrs::Checkpoint previous;
  for (const auto& entry : entries) {
    // The chain: every message names the one before it.
    EXPECT_TRUE(entry.prev && adapters::nats::SamePosition(*entry.prev, previous))
        << adapters::nats::FormatCheckpoint(entry.checkpoint) << " does not name "
        << adapters::nats::FormatCheckpoint(previous);
    if (entry.event) {
      events.push_back(entry.id);
      EXPECT_TRUE(adapters::nats::PositionBefore(previous, entry.checkpoint))
          << adapters::nats::FormatCheckpoint(entry.checkpoint) << " after "
          << adapters::nats::FormatCheckpoint(previous);
    } else {
      EXPECT_EQ(entry.checkpoint.xid, previous.xid);
      EXPECT_EQ(entry.checkpoint.position, previous.position);
      EXPECT_GT(entry.checkpoint.bound, previous.bound);
    }
    EXPECT_GE(entry.checkpoint.bound, previous.bound);
    previous = entry.checkpoint;
  }
  ASSERT_EQ(events.size(), outbox.size());
  EXPECT_EQ(events, outbox);
}

}  // namespace shopcqrs::test_support
