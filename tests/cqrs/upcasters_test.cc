// The upcaster registry: chains to the current version, renames, and what it refuses when built
// (duplicates, gaps, chains that end elsewhere) or when reading (unknown types, future versions).

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "cqrs/upcasters.h"

namespace shopcqrs::cqrs {
namespace {

// Payloads are text here: each upcaster appends what it did, so the order of application shows.
using Registry = UpcasterRegistry<std::string>;

Registry::Upcaster Append(std::string mark) {
  return [mark](std::string& payload) { payload += mark; };
}

// Thing: v1 -> v2 -> v3 (current 3). Old: v1 -> renamed into New v2 (current 2). Plain: v1 only.
Registry Sample() {
  return Registry::Builder()
      .Current("Thing", 3)
      .Add("Thing", 2, Append("|2>3"))
      .Add("Thing", 1, Append("|1>2"))
      .Current("New", 2)
      .Add("Old", 1, "New", Append("|Old1>New2"))
      .Current("Plain", 1)
      .Build();
}

TEST(Upcasters, AppliesTheWholeChainInOrder) {
  const auto registry = Sample();
  std::string payload = "p";
  auto schema = registry.Upcast("Thing", 1, payload);
  ASSERT_TRUE(schema.has_value()) << schema.error().message;
  EXPECT_EQ(*schema, (EventSchema{"Thing", 3}));
  EXPECT_EQ(payload, "p|1>2|2>3");

  payload = "p";
  schema = registry.Upcast("Thing", 2, payload);
  ASSERT_TRUE(schema.has_value());
  EXPECT_EQ(*schema, (EventSchema{"Thing", 3}));
  EXPECT_EQ(payload, "p|2>3");
}

TEST(Upcasters, CurrentVersionPassesUntouched) {
  const auto registry = Sample();
  std::string payload = "p";
  auto schema = registry.Upcast("Thing", 3, payload);
  ASSERT_TRUE(schema.has_value());
  EXPECT_EQ(*schema, (EventSchema{"Thing", 3}));
  EXPECT_EQ(payload, "p");
  schema = registry.Upcast("Plain", 1, payload);
  ASSERT_TRUE(schema.has_value());
  EXPECT_EQ(*schema, (EventSchema{"Plain", 1}));
  EXPECT_EQ(registry.CurrentVersion("Thing"), 3);
  EXPECT_EQ(registry.CurrentVersion("Plain"), 1);
  EXPECT_EQ(registry.CurrentVersion("Old"), 0);  // only read, never written
  EXPECT_EQ(registry.CurrentVersion("Nothing"), 0);
}

TEST(Upcasters, RenameReadsAsTheNewType) {
  const auto registry = Sample();
  std::string payload = "p";
  auto schema = registry.Upcast("Old", 1, payload);
  ASSERT_TRUE(schema.has_value()) << schema.error().message;
  EXPECT_EQ(*schema, (EventSchema{"New", 2}));
  EXPECT_EQ(payload, "p|Old1>New2");
  // Resolve answers the same schema without a payload.
  auto resolved = registry.Resolve("Old", 1);
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(*resolved, (EventSchema{"New", 2}));
  EXPECT_EQ(*registry.Resolve("Thing", 1), (EventSchema{"Thing", 3}));
}

TEST(Upcasters, FutureVersionIsAClearError) {
  const auto registry = Sample();
  std::string payload = "p";
  auto schema = registry.Upcast("Thing", 4, payload);
  ASSERT_FALSE(schema.has_value());
  EXPECT_EQ(schema.error().kind, UpcastError::Kind::kFutureVersion);
  EXPECT_EQ(schema.error().message,
            "event Thing v4 is newer than this build reads (current version v3)");
  EXPECT_EQ(payload, "p");
  // The same on every call (and through Resolve).
  EXPECT_EQ(registry.Resolve("Thing", 4).error().message, schema.error().message);
  EXPECT_EQ(registry.Resolve("Plain", 2).error().kind, UpcastError::Kind::kFutureVersion);
  EXPECT_EQ(registry.Resolve("Old", 2).error().kind, UpcastError::Kind::kFutureVersion);
}

TEST(Upcasters, UnknownTypeAndBadVersionsAreErrors) {
  const auto registry = Sample();
  std::string payload;
  auto unknown = registry.Upcast("Nothing", 1, payload);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().kind, UpcastError::Kind::kUnknownType);
  EXPECT_EQ(unknown.error().message, "unknown event type Nothing");
  for (int version : {0, -1}) {
    auto bad = registry.Upcast("Thing", version, payload);
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().kind, UpcastError::Kind::kInvalidVersion);
  }
  // New was created by the rename at v2: there never was a New v1.
  auto never = registry.Upcast("New", 1, payload);
  ASSERT_FALSE(never.has_value());
  EXPECT_EQ(never.error().kind, UpcastError::Kind::kNoUpcaster);
}

TEST(Upcasters, ThrowingUpcasterIsAnErrorNamingTheStep) {
  const auto registry =
      Registry::Builder()
          .Current("Thing", 2)
          .Add("Thing", 1, [](std::string&) { throw std::runtime_error("lacks field x"); })
          .Build();
  std::string payload;
  auto schema = registry.Upcast("Thing", 1, payload);
  ASSERT_FALSE(schema.has_value());
  EXPECT_EQ(schema.error().kind, UpcastError::Kind::kUpcasterFailed);
  EXPECT_EQ(schema.error().message, "upcasting Thing v1 to Thing v2: lacks field x");
  // Resolve runs no upcaster.
  EXPECT_TRUE(registry.Resolve("Thing", 1).has_value());
}

// Builds `builder`, expecting it refused with `message`.
void ExpectRefused(Registry::Builder builder, const std::string& message) {
  try {
    std::move(builder).Build();
    ADD_FAILURE() << "built, expected: " << message;
  } catch (const UpcasterRegistrationError& error) {
    EXPECT_EQ(error.what(), message);
  }
}

TEST(Upcasters, RefusesDuplicates) {
  Registry::Builder builder;
  builder.Current("Thing", 2).Add("Thing", 1, Append("a"));
  EXPECT_THROW(builder.Add("Thing", 1, Append("b")), UpcasterRegistrationError);
  EXPECT_THROW(builder.Add("Thing", 1, "Other", Append("b")), UpcasterRegistrationError);
  EXPECT_THROW(builder.Current("Thing", 2), UpcasterRegistrationError);
  EXPECT_THROW(builder.Current("Thing", 3), UpcasterRegistrationError);
  EXPECT_NO_THROW(std::move(builder).Build());  // the refused registrations changed nothing
}

TEST(Upcasters, RefusesBadArguments) {
  Registry::Builder builder;
  EXPECT_THROW(builder.Current("Thing", 0), UpcasterRegistrationError);
  EXPECT_THROW(builder.Current("", 1), UpcasterRegistrationError);
  EXPECT_THROW(builder.Add("Thing", 0, Append("a")), UpcasterRegistrationError);
  EXPECT_THROW(builder.Add("Thing", 1, Registry::Upcaster()), UpcasterRegistrationError);
}

TEST(Upcasters, RefusesAGapBeforeTheCurrentVersion) {
  // v1 -> v2 registered, v2 -> v3 missing: v1 and v2 events could not be read.
  ExpectRefused(std::move(Registry::Builder().Current("Thing", 3).Add("Thing", 1, Append("a"))),
                "the upcasters from Thing v1 stop at Thing v2: no upcaster from it to the "
                "current version v3");
  // v2 -> v3 registered, v1 -> v2 missing.
  ExpectRefused(std::move(Registry::Builder().Current("Thing", 3).Add("Thing", 2, Append("a"))),
                "no upcaster from Thing v1 (a gap before the current version v3)");
  // A new current version and no upcaster at all.
  ExpectRefused(std::move(Registry::Builder().Current("Thing", 2)),
                "no upcaster from Thing v1 (a gap before the current version v2)");
}

TEST(Upcasters, RefusesChainsThatMissTheCurrentVersion) {
  // From the current version on.
  ExpectRefused(std::move(Registry::Builder().Current("Thing", 1).Add("Thing", 1, Append("a"))),
                "the upcasters from Thing v1 lead to Thing v2, past its current version v1");
  // Into a type nobody writes.
  ExpectRefused(std::move(Registry::Builder().Add("Old", 1, "Gone", Append("a"))),
                "the upcasters from Old v1 end at Gone v2, which is not a current event type");
  // A rename whose target's chain has a gap (New exists from v2, the rename's version, on).
  ExpectRefused(std::move(Registry::Builder().Current("New", 3).Add("Old", 1, "New", Append("a"))),
                "no upcaster from New v2 (a gap before the current version v3)");
}

TEST(Upcasters, BuiltRegistryMovesWithItsChains) {
  auto registry = Sample();
  const auto moved = std::move(registry);
  std::string payload = "p";
  ASSERT_TRUE(moved.Upcast("Old", 1, payload).has_value());
  EXPECT_EQ(payload, "p|Old1>New2");
}

TEST(Upcasters, BuildLeavesTheBuilderEmpty) {
  Registry::Builder builder;
  builder.Current("Thing", 2).Add("Thing", 1, Append("a"));
  const auto first = builder.Build();
  EXPECT_EQ(first.CurrentVersion("Thing"), 2);
  builder.Current("Thing", 1);  // no duplicate: the builder starts afresh
  const auto second = builder.Build();
  EXPECT_EQ(second.CurrentVersion("Thing"), 1);
  std::string payload = "p";
  ASSERT_TRUE(first.Upcast("Thing", 1, payload).has_value());
  EXPECT_EQ(payload, "pa");
}

}  // namespace
}  // namespace shopcqrs::cqrs
