// How a consumer judges a delivery by its content (JudgeDelivery): no server needed.

#include <gtest/gtest.h>

#include "adapters/nats/event_messages.h"

namespace shopcqrs {
namespace {

using adapters::nats::Delivery;
using adapters::nats::JudgeDelivery;
using adapters::nats::StreamDivergedError;

TEST(JudgeDelivery, TakesTheMessageThatNamesTheCursor) {
  EXPECT_EQ(JudgeDelivery({5, 3, 9}, {5, 4, 9}, cqrs::Checkpoint{5, 3, 2}, false), Delivery::kNew);
  EXPECT_EQ(JudgeDelivery({}, {1, 1, 1}, cqrs::Checkpoint{}, false), Delivery::kNew);
  // The predecessor is named by position: its bound may differ (two relays' batches).
  EXPECT_EQ(JudgeDelivery({5, 3, 9}, {6, 1, 9}, cqrs::Checkpoint{5, 3, 7}, false), Delivery::kNew);
}

TEST(JudgeDelivery, SkipsWhatIsAtOrBeforeTheCursor) {
  EXPECT_EQ(JudgeDelivery({5, 3, 9}, {5, 3, 9}, cqrs::Checkpoint{5, 2, 1}, false),
            Delivery::kApplied);
  EXPECT_EQ(JudgeDelivery({5, 3, 9}, {4, 8, 4}, cqrs::Checkpoint{4, 7, 4}, true),
            Delivery::kApplied);
  // A bound message at the cursor's position.
  EXPECT_EQ(JudgeDelivery({5, 3, 9}, {5, 3, 12}, cqrs::Checkpoint{5, 3, 9}, false),
            Delivery::kApplied);
}

TEST(JudgeDelivery, AHoleIsFatalWhateverTheSequenceSays) {
  // Contiguous sequence numbers, but the message follows (5, 4), which never came.
  EXPECT_THROW(JudgeDelivery({5, 3, 9}, {5, 5, 9}, cqrs::Checkpoint{5, 4, 9}, false),
               StreamDivergedError);
  // A bound message after an event that was not delivered.
  EXPECT_THROW(JudgeDelivery({5, 3, 9}, {5, 4, 11}, cqrs::Checkpoint{5, 4, 9}, false),
               StreamDivergedError);
  // The stream no longer holds the store's checkpoint: its first message after it follows
  // something else.
  EXPECT_THROW(JudgeDelivery({5, 3, 9}, {7, 1, 9}, cqrs::Checkpoint{6, 2, 8}, false),
               StreamDivergedError);
  // Diverged is fatal: the projector stops instead of retrying.
  EXPECT_THROW(JudgeDelivery({}, {2, 1, 2}, cqrs::Checkpoint{1, 1, 1}, false),
               cqrs::FatalProjectionError);
}

TEST(JudgeDelivery, ARedeliveryWithNewContentReseats) {
  // A sequence at or below the last one taken that carries content after the cursor: the
  // stream's tail was rewritten under the consumer. Retryable (re-seat by position), not
  // skipped.
  try {
    JudgeDelivery({5, 3, 9}, {5, 4, 9}, cqrs::Checkpoint{5, 3, 9}, true);
    FAIL() << "new content at an old sequence was accepted";
  } catch (const cqrs::FatalProjectionError&) {
    FAIL() << "a rewritten tail should re-seat, not stop the projection";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("rewritten"), std::string::npos);
  }
}

TEST(JudgeDelivery, MessagesBeforeChainingAreJudgedByPositionAlone) {
  EXPECT_EQ(JudgeDelivery({5, 3, 9}, {5, 4, 9}, std::nullopt, false), Delivery::kNew);
  EXPECT_EQ(JudgeDelivery({5, 3, 9}, {5, 2, 9}, std::nullopt, false), Delivery::kApplied);
}

}  // namespace
}  // namespace shopcqrs
