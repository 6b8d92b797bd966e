// CommandService against the in-memory write store: orchestration, If-Match, idempotency and
// retries, with no server running.
#include <gtest/gtest.h>

#include "application/command_service.h"
#include "support/in_memory_write_store.h"

namespace shopcqrs::app {
namespace {

using domain::Timestamp;

class FixedClock final : public Clock {
 public:
  Timestamp Now() override { return Timestamp(std::chrono::milliseconds(1'795'000'000'000)); }
};

class CountingIds final : public IdGenerator {
 public:
  domain::Uuid NewId() override { return domain::Uuid::V4FromRandom(42, ++next_); }

 private:
  std::uint64_t next_ = 0;
};

class CommandServiceTest : public ::testing::Test {
 protected:
  std::string Customer(const std::string& email = "ada@example.com") {
    auto r = service_.Handle(RegisterCustomer{"Ada", email});
    EXPECT_TRUE(r.has_value());
    return r->id;
  }
  std::string Product(const std::string& sku, std::int64_t price, std::int64_t stock) {
    auto r = service_.Handle(AddProduct{sku, "Product " + sku, price, stock});
    EXPECT_TRUE(r.has_value());
    return r->id;
  }
  domain::Result<CommandResult> Place(const std::string& customer, const std::string& product,
                                      std::int64_t quantity) {
    return service_.Handle(PlaceOrder{*domain::CustomerId::Parse(customer),
                                      {{*domain::ProductId::Parse(product), quantity}}});
  }
  std::int64_t Stock(const std::string& product) {
    return store_.Snapshot().products.at(*domain::ProductId::Parse(product)).stock();
  }

  testing::InMemoryWriteStore store_;
  FixedClock clock_;
  CountingIds ids_;
  CommandService service_{store_, clock_, ids_};
};

TEST_F(CommandServiceTest, GivenNewCustomer_WhenRegistered_ThenCreatedWithVersionOneAndToken) {
  // when
  auto r = service_.Handle(RegisterCustomer{"Ada", "ada@example.com"});
  // then
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->created);
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(*r->email, "ada@example.com");
  EXPECT_FALSE(r->consistency_token.empty());
  EXPECT_EQ(store_.EventCount(), 1u);
}

TEST_F(CommandServiceTest, GivenInvalidInput_WhenRegistering_ThenValidationFailedAndNothingStored) {
  // when
  auto r = service_.Handle(RegisterCustomer{"", "ada@example.com"});
  // then
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "validation_failed");
  EXPECT_EQ(store_.EventCount(), 0u);
}

TEST_F(CommandServiceTest, GivenStaleIfMatch_WhenChangingDetails_ThenVersionMismatchAndUnchanged) {
  // given
  auto id = *domain::CustomerId::Parse(Customer());
  // when
  auto r = service_.Handle(ChangeCustomerDetails{id, "Other", std::nullopt, 5});
  // then
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "version_mismatch");
  EXPECT_EQ(r.error().category, domain::ErrorCategory::kPrecondition);
  EXPECT_EQ(store_.Snapshot().customers.at(id).name(), "Ada");
}

TEST_F(CommandServiceTest, GivenMatchingIfMatch_WhenChangingDetails_ThenVersionTwo) {
  // given
  auto id = *domain::CustomerId::Parse(Customer());
  // when
  auto r = service_.Handle(ChangeCustomerDetails{id, "Ada L.", std::nullopt, 1});
  // then
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->version, 2);
}

TEST_F(CommandServiceTest, GivenUnknownIds_WhenCommanded_ThenNotFound) {
  // given
  domain::OrderId order(domain::Uuid::V4FromRandom(7, 7));
  domain::ProductId product(domain::Uuid::V4FromRandom(8, 8));
  // when / then
  EXPECT_EQ(service_.Handle(PayOrder{order, 1, "r", {}}).error().code, "not_found");
  EXPECT_EQ(service_.Handle(ShipOrder{order, "t", {}}).error().code, "not_found");
  EXPECT_EQ(service_.Handle(DeliverOrder{order, {}}).error().code, "not_found");
  EXPECT_EQ(service_.Handle(CancelOrder{order, "", {}}).error().code, "not_found");
  EXPECT_EQ(service_.Handle(RestockProduct{product, 1, {}}).error().code, "not_found");
  EXPECT_EQ(service_.Handle(ChangeProductPrice{product, 1, {}}).error().code, "not_found");
}

TEST_F(CommandServiceTest, GivenUnknownCustomer_WhenPlacing_ThenUnknownCustomer) {
  // given
  auto product = Product("A", 100, 5);
  // when
  auto r = Place(domain::CustomerId(domain::Uuid::V4FromRandom(1, 1)).ToString(), product, 1);
  // then
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "unknown_customer");
  EXPECT_EQ(Stock(product), 5);
}

TEST_F(CommandServiceTest, GivenNoLines_WhenPlacing_ThenValidationFailed) {
  // given
  auto customer = *domain::CustomerId::Parse(Customer());
  // when
  auto r = service_.Handle(PlaceOrder{customer, {}});
  // then
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "validation_failed");
}

TEST_F(CommandServiceTest, GivenStock_WhenPlacingThenCancelling_ThenStockReservedAndReturned) {
  // given
  auto customer = Customer();
  auto product = Product("A", 100, 5);
  // when
  auto placed = Place(customer, product, 3);
  // then
  ASSERT_TRUE(placed.has_value());
  EXPECT_EQ(*placed->status, "placed");
  EXPECT_EQ(*placed->total_cents, 300);
  EXPECT_EQ(Stock(product), 2);
  // when
  auto cancelled = service_.Handle(CancelOrder{*domain::OrderId::Parse(placed->id), "", {}});
  // then
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(*cancelled->status, "cancelled");
  EXPECT_EQ(cancelled->version, 2);
  EXPECT_EQ(Stock(product), 5);
}

TEST_F(CommandServiceTest, GivenTooLittleStock_WhenPlacing_ThenInsufficientStockAndNothingChanged) {
  // given
  auto customer = Customer();
  auto product = Product("A", 100, 2);
  const auto events = store_.EventCount();
  // when
  auto r = Place(customer, product, 3);
  // then
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "insufficient_stock");
  EXPECT_EQ(Stock(product), 2);
  EXPECT_EQ(store_.EventCount(), events);
}

TEST_F(CommandServiceTest, GivenIdempotencyKey_WhenRepeated_ThenStoredResultAndWorkOnce) {
  // given
  auto customer = Customer();
  auto product = Product("A", 100, 5);
  Idempotency key{"k1", "fp"};
  PlaceOrder cmd{*domain::CustomerId::Parse(customer), {{*domain::ProductId::Parse(product), 2}}};
  // when
  auto first = service_.Handle(cmd, key);
  auto second = service_.Handle(cmd, key);
  // then
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(Stock(product), 3);
}

TEST_F(CommandServiceTest, GivenUsedKey_WhenDifferentRequest_ThenIdempotencyKeyReused) {
  // given
  ASSERT_TRUE(service_.Handle(RegisterCustomer{"A", "a@example.com"}, Idempotency{"k", "fp1"}));
  // when
  auto r = service_.Handle(RegisterCustomer{"B", "b@example.com"}, Idempotency{"k", "fp2"});
  // then
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "idempotency_key_reused");
  EXPECT_EQ(store_.Snapshot().customers.size(), 1u);
}

TEST_F(CommandServiceTest, GivenKeyStoredWithLegacyFingerprint_WhenSameRequest_ThenReplayed) {
  // given: a key stored before the fingerprint format changed
  auto first = service_.Handle(RegisterCustomer{"A", "a@example.com"}, Idempotency{"k", "old"});
  ASSERT_TRUE(first.has_value());
  // when: the same request again, fingerprinted in the new format with the old one beside it
  auto again = service_.Handle(RegisterCustomer{"A", "a@example.com"},
                               Idempotency{"k", "sha256:new", "old"});
  auto other = service_.Handle(RegisterCustomer{"B", "b@example.com"},
                               Idempotency{"k", "sha256:other", "older"});
  // then: replayed, not refused, and done once; a different request is still refused
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *first);
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, "idempotency_key_reused");
  EXPECT_EQ(store_.Snapshot().customers.size(), 1u);
}

TEST_F(CommandServiceTest, GivenTransientFaults_WhenCommanded_ThenRetriedUntilSuccess) {
  // given
  store_.FailCommitsTransiently(3);
  // when
  auto r = service_.Handle(RegisterCustomer{"Ada", "ada@example.com"});
  // then
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(store_.Snapshot().customers.size(), 1u);
}

TEST_F(CommandServiceTest,
       GivenPersistentTransientFaults_WhenCommanded_ThenGivesUpAfterMaxAttempts) {
  // given
  CommandService service(store_, clock_, ids_, CommandService::Options{.max_attempts = 3});
  store_.FailCommitsTransiently(3);
  // when / then
  EXPECT_THROW(service.Handle(RegisterCustomer{"Ada", "ada@example.com"}), TransientStoreError);
  EXPECT_EQ(store_.Snapshot().customers.size(), 0u);
}

TEST_F(CommandServiceTest, GivenHardFault_WhenCommanded_ThenPropagatesWithoutRetry) {
  // given
  store_.FailCommitsHard(1);
  // when / then
  EXPECT_THROW(service_.Handle(RegisterCustomer{"Ada", "ada@example.com"}), std::runtime_error);
  auto r = service_.Handle(RegisterCustomer{"Ada", "ada@example.com"});
  EXPECT_TRUE(r.has_value());
}

TEST_F(CommandServiceTest, GivenFullLifecycle_WhenDriven_ThenEveryTransitionBumpsVersion) {
  // given
  auto customer = Customer();
  auto product = Product("A", 250, 5);
  auto placed = Place(customer, product, 2);
  ASSERT_TRUE(placed.has_value());
  auto id = *domain::OrderId::Parse(placed->id);
  // when
  auto paid = service_.Handle(PayOrder{id, 500, "pay", 1});
  auto shipped = service_.Handle(ShipOrder{id, "track", 2});
  auto delivered = service_.Handle(DeliverOrder{id, 3});
  // then
  ASSERT_TRUE(paid && shipped && delivered);
  EXPECT_EQ(*paid->status, "paid");
  EXPECT_EQ(*shipped->status, "shipped");
  EXPECT_EQ(*delivered->status, "delivered");
  EXPECT_EQ(delivered->version, 4);
  EXPECT_EQ(service_.Handle(CancelOrder{id, "", {}}).error().code, "invalid_transition");
}

// ---- principals ----

Principal As(const std::string& customer) {
  return Principal::Customer(*domain::CustomerId::Parse(customer));
}

TEST_F(CommandServiceTest, GivenCustomer_WhenPlacingForAnother_ThenForbiddenAndNothingChanges) {
  const auto ann = Customer("ann@example.com");
  const auto bob = Customer("bob@example.com");
  const auto product = Product("A", 100, 5);
  const PlaceOrder for_bob{*domain::CustomerId::Parse(bob),
                           {{*domain::ProductId::Parse(product), 2}}};
  auto r = service_.Handle(for_bob, {}, As(ann));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().category, domain::ErrorCategory::kForbidden);
  EXPECT_EQ(Stock(product), 5);
  EXPECT_TRUE(service_.Handle(for_bob, {}, As(bob)).has_value());
  EXPECT_EQ(Stock(product), 3);
}

TEST_F(CommandServiceTest, GivenCustomer_WhenChangingAnother_ThenNotFound) {
  const auto ann = Customer("ann@example.com");
  const auto bob = Customer("bob@example.com");
  auto r = service_.Handle(
      ChangeCustomerDetails{*domain::CustomerId::Parse(bob), std::string("X"), {}, {}}, {},
      As(ann));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "not_found");
  EXPECT_TRUE(
      service_
          .Handle(ChangeCustomerDetails{*domain::CustomerId::Parse(ann), std::string("A"), {}, {}},
                  {}, As(ann))
          .has_value());
}

TEST_F(CommandServiceTest, GivenCustomer_WhenCancelling_ThenOwnPlacedOrdersOnly) {
  const auto ann = Customer("ann@example.com");
  const auto bob = Customer("bob@example.com");
  const auto product = Product("A", 100, 5);
  const auto bobs = Place(bob, product, 1)->id;
  auto other = service_.Handle(CancelOrder{*domain::OrderId::Parse(bobs), "", {}}, {}, As(ann));
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, "not_found");
  const auto paid = Place(ann, product, 1)->id;
  ASSERT_TRUE(service_.Handle(PayOrder{*domain::OrderId::Parse(paid), 100, "ref", {}}));
  auto after_pay = service_.Handle(CancelOrder{*domain::OrderId::Parse(paid), "", {}}, {}, As(ann));
  ASSERT_FALSE(after_pay.has_value());
  EXPECT_EQ(after_pay.error().category, domain::ErrorCategory::kForbidden);
  const auto placed = Place(ann, product, 1)->id;
  EXPECT_TRUE(service_.Handle(CancelOrder{*domain::OrderId::Parse(placed), "", {}}, {}, As(ann)));
  // An admin cancels a paid order.
  EXPECT_TRUE(service_.Handle(CancelOrder{*domain::OrderId::Parse(paid), "", {}}, {},
                              Principal::Admin("admin")));
}

TEST_F(CommandServiceTest, GivenRoles_WhenOutsideTheirCommands_ThenForbidden) {
  const auto ann = Customer("ann@example.com");
  const auto product = Product("A", 100, 5);
  const auto order = Place(ann, product, 1)->id;
  const auto id = *domain::OrderId::Parse(order);
  const Principal payments = Principal::Payments("psp");
  EXPECT_EQ(service_.Handle(AddProduct{"B", "B", 1, 1}, {}, As(ann)).error().code, "forbidden");
  EXPECT_EQ(service_.Handle(AddProduct{"B", "B", 1, 1}, {}, payments).error().code, "forbidden");
  EXPECT_EQ(service_.Handle(ShipOrder{id, "T", {}}, {}, As(ann)).error().code, "forbidden");
  EXPECT_EQ(service_.Handle(PayOrder{id, 100, "r", {}}, {}, As(ann)).error().code, "forbidden");
  EXPECT_EQ(service_
                .Handle(PlaceOrder{*domain::CustomerId::Parse(ann),
                                   {{*domain::ProductId::Parse(product), 1}}},
                        {}, payments)
                .error()
                .code,
            "forbidden");
  EXPECT_EQ(
      service_
          .Handle(ChangeCustomerDetails{*domain::CustomerId::Parse(ann), std::string("X"), {}, {}},
                  {}, Principal::Anonymous())
          .error()
          .code,
      "forbidden");
  EXPECT_TRUE(service_.Handle(PayOrder{id, 100, "r", {}}, {}, payments).has_value());
  EXPECT_TRUE(
      service_.Handle(RegisterCustomer{"Zed", "zed@example.com"}, {}, Principal::Anonymous())
          .has_value());
}

TEST_F(CommandServiceTest, GivenTwoPrincipals_WhenSameIdempotencyKey_ThenTwoRequests) {
  const auto ann = Customer("ann@example.com");
  const auto bob = Customer("bob@example.com");
  const auto product = Product("A", 100, 5);
  const Idempotency key{"same", "fp-a"};
  auto a = service_.Handle(
      PlaceOrder{*domain::CustomerId::Parse(ann), {{*domain::ProductId::Parse(product), 1}}}, key,
      As(ann));
  auto b = service_.Handle(
      PlaceOrder{*domain::CustomerId::Parse(bob), {{*domain::ProductId::Parse(product), 1}}},
      Idempotency{"same", "fp-b"}, As(bob));
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());  // not idempotency_key_reused, and not A's stored answer
  EXPECT_NE(a->id, b->id);
  EXPECT_FALSE(a->replayed);
  auto again = service_.Handle(
      PlaceOrder{*domain::CustomerId::Parse(ann), {{*domain::ProductId::Parse(product), 1}}}, key,
      As(ann));
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->id, a->id);
  EXPECT_EQ(Stock(product), 3);
}

}  // namespace
}  // namespace shopcqrs::app
