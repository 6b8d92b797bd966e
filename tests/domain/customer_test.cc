#include "domain/customer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "support/domain_checks.h"

namespace shopcqrs::domain {
namespace {

using namespace std::chrono_literals;
using namespace test_support;

const Timestamp kRegisteredAt = Timestamp{std::chrono::sys_days{2026y / 1 / 2}} + 10h;
const Timestamp kChangedAt = kRegisteredAt + 5min;
const CustomerId kId{Uuid::V4FromRandom(0xC0FFEE, 1)};

Customer Registered() {
  return *Customer::Register(kId, "Alice", "alice@example.com", kRegisteredAt);
}

// `customer` is as Registered() made it: a failed change left it alone.
void ExpectAsRegistered(const Customer& customer) {
  EXPECT_EQ(customer.name(), "Alice");
  EXPECT_EQ(customer.email(), "alice@example.com");
  EXPECT_EQ(customer.version(), 1);
  EXPECT_EQ(customer.pending_events().size(), 1u);
}

TEST(CustomerTest, GivenValidDetails_WhenRegistered_ThenVersionOneAndRegisteredEventRecorded) {
  // given
  const std::string name = "Alice";
  const std::string email = "alice@example.com";

  // when
  const auto customer = Customer::Register(kId, name, email, kRegisteredAt);

  // then
  ASSERT_TRUE(customer.has_value());
  EXPECT_EQ(customer->id(), kId);
  EXPECT_EQ(customer->name(), name);
  EXPECT_EQ(customer->email(), email);
  EXPECT_EQ(customer->version(), 1);
  ASSERT_EQ(customer->pending_events().size(), 1u);
  const auto* registered = LastEvent<CustomerRegistered>(*customer, kRegisteredAt);
  ASSERT_NE(registered, nullptr);
  EXPECT_EQ(registered->customer_id, kId);
  EXPECT_EQ(registered->name, name);
  EXPECT_EQ(registered->email, email);
}

TEST(CustomerTest, GivenNameAtBoundaries_WhenRegistered_ThenInsideAcceptedOutsideRejected) {
  // given
  const std::string email = "a@b";

  // when / then
  EXPECT_TRUE(Customer::Register(kId, "A", email, kRegisteredAt).has_value());
  EXPECT_TRUE(Customer::Register(kId, Repeat("a", 200), email, kRegisteredAt).has_value());
  ExpectValidation(Customer::Register(kId, "", email, kRegisteredAt).error(),
                   "name must be 1..200 characters");
  ExpectValidation(Customer::Register(kId, Repeat("a", 201), email, kRegisteredAt).error(),
                   "name must be 1..200 characters");
}

TEST(CustomerTest, GivenTwoHundredMultiByteCharName_WhenRegistered_ThenAccepted) {
  // given
  const std::string name = Repeat("\xE6\x97\xA5", 200);  // 200 × U+65E5 日, 600 bytes

  // when
  const auto customer = Customer::Register(kId, name, "a@b", kRegisteredAt);

  // then
  ASSERT_TRUE(customer.has_value());
  EXPECT_EQ(customer->name(), name);
}

TEST(CustomerTest, GivenEmailAtBoundaries_WhenRegistered_ThenInsideAcceptedOutsideRejected) {
  // given
  const std::string longest = Repeat("a", 252) + "@b";   // 254
  const std::string too_long = Repeat("a", 253) + "@b";  // 255

  // when / then
  EXPECT_TRUE(Customer::Register(kId, "A", "@", kRegisteredAt).has_value());
  EXPECT_TRUE(Customer::Register(kId, "A", longest, kRegisteredAt).has_value());
  ExpectValidation(Customer::Register(kId, "A", "", kRegisteredAt).error(),
                   "email must be 1..254 characters");
  ExpectValidation(Customer::Register(kId, "A", too_long, kRegisteredAt).error(),
                   "email must be 1..254 characters");
}

TEST(CustomerTest, GivenEmailWithoutAt_WhenRegistered_ThenValidationFailed) {
  // given
  const std::string email = "alice.example.com";

  // when
  const auto customer = Customer::Register(kId, "Alice", email, kRegisteredAt);

  // then
  ExpectValidation(customer.error(), "email must contain '@'");
}

TEST(CustomerTest, GivenRegisteredCustomer_WhenNameChanged_ThenVersionTwoAndFullDetailsInEvent) {
  // given
  Customer customer = Registered();

  // when
  const auto result = customer.ChangeDetails("Alicia", std::nullopt, kChangedAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(customer.name(), "Alicia");
  EXPECT_EQ(customer.email(), "alice@example.com");
  EXPECT_EQ(customer.version(), 2);
  ASSERT_EQ(customer.pending_events().size(), 2u);
  const auto* changed = LastEvent<CustomerDetailsChanged>(customer, kChangedAt);
  ASSERT_NE(changed, nullptr);
  EXPECT_EQ(changed->customer_id, kId);
  EXPECT_EQ(changed->name, "Alicia");
  EXPECT_EQ(changed->email, "alice@example.com");
}

TEST(CustomerTest, GivenRegisteredCustomer_WhenEmailChanged_ThenEventCarriesCurrentName) {
  // given
  Customer customer = Registered();

  // when
  const auto result = customer.ChangeDetails(std::nullopt, "new@example.com", kChangedAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(customer.email(), "new@example.com");
  const auto& changed = std::get<CustomerDetailsChanged>(customer.pending_events()[1].payload);
  EXPECT_EQ(changed.name, "Alice");
  EXPECT_EQ(changed.email, "new@example.com");
}

TEST(CustomerTest, GivenRegisteredCustomer_WhenBothChanged_ThenBothUpdatedInOneEvent) {
  // given
  Customer customer = Registered();

  // when
  const auto result = customer.ChangeDetails("Bob", "bob@example.com", kChangedAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(customer.name(), "Bob");
  EXPECT_EQ(customer.email(), "bob@example.com");
  EXPECT_EQ(customer.version(), 2);
  EXPECT_EQ(customer.pending_events().size(), 2u);
}

TEST(CustomerTest, GivenRegisteredCustomer_WhenNothingGiven_ThenValidationFailedAndUnchanged) {
  // given
  Customer customer = Registered();

  // when
  const auto result = customer.ChangeDetails(std::nullopt, std::nullopt, kChangedAt);

  // then
  ExpectValidation(result.error(), "at least one of name, email is required");
  ExpectAsRegistered(customer);
}

TEST(CustomerTest, GivenRegisteredCustomer_WhenValidNameButInvalidEmail_ThenNothingChanges) {
  // given
  Customer customer = Registered();

  // when
  const auto result = customer.ChangeDetails("Bob", "no-at-sign", kChangedAt);

  // then
  ExpectValidation(result.error(), "email must contain '@'");
  ExpectAsRegistered(customer);
}

TEST(CustomerTest, GivenRegisteredCustomer_WhenNameChangedAtBoundaries_ThenLimitsApply) {
  // given
  Customer customer = Registered();

  // when / then
  ExpectValidation(customer.ChangeDetails("", std::nullopt, kChangedAt).error(),
                   "name must be 1..200 characters");
  ExpectValidation(customer.ChangeDetails(Repeat("a", 201), std::nullopt, kChangedAt).error(),
                   "name must be 1..200 characters");
  ExpectValidation(customer.ChangeDetails(std::nullopt, "", kChangedAt).error(),
                   "email must be 1..254 characters");
  EXPECT_EQ(customer.version(), 1);
  EXPECT_TRUE(customer.ChangeDetails(Repeat("a", 200), std::nullopt, kChangedAt).has_value());
  EXPECT_EQ(customer.version(), 2);
}

TEST(CustomerTest, GivenStoredState_WhenRehydrated_ThenStateKeptAndNoEventsPending) {
  // given
  const std::int64_t version = 7;

  // when
  Customer customer = Customer::Rehydrate(kId, "Carol", "carol@example.com", version);

  // then
  EXPECT_EQ(customer.id(), kId);
  EXPECT_EQ(customer.name(), "Carol");
  EXPECT_EQ(customer.email(), "carol@example.com");
  EXPECT_EQ(customer.version(), 7);
  EXPECT_TRUE(customer.pending_events().empty());
}

TEST(CustomerTest, GivenRehydratedCustomer_WhenChanged_ThenEventVersionFollowsStoredVersion) {
  // given
  Customer customer = Customer::Rehydrate(kId, "Carol", "carol@example.com", 7);

  // when
  const auto result = customer.ChangeDetails("Caroline", std::nullopt, kChangedAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(customer.version(), 8);
  ASSERT_EQ(customer.pending_events().size(), 1u);
  EXPECT_EQ(customer.pending_events()[0].aggregate_version, 8);
}

}  // namespace
}  // namespace shopcqrs::domain
