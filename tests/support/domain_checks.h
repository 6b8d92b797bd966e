#pragma once

// Helpers of the domain tests.

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include <gtest/gtest.h>

#include "domain/error.h"
#include "domain/events.h"

namespace shopcqrs::test_support {

// `unit` `times` times over.
inline std::string Repeat(std::string_view unit, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

// A validation_failed error with `detail`.
inline void ExpectValidation(const domain::Error& error, std::string_view detail) {
  EXPECT_EQ(error.category, domain::ErrorCategory::kValidation);
  EXPECT_EQ(error.code, "validation_failed");
  EXPECT_EQ(error.detail, detail);
}

// The last event `aggregate` recorded, checked to be of type E, at the aggregate's version and
// occurred `at`; null (with a failure) when there is none or it is of another type.
template <class E, class Aggregate>
const E* LastEvent(const Aggregate& aggregate, domain::Timestamp at) {
  const auto& events = aggregate.pending_events();
  if (events.empty()) {
    ADD_FAILURE() << "no event recorded";
    return nullptr;
  }
  const domain::DomainEvent& event = events.back();
  EXPECT_EQ(event.aggregate_version, aggregate.version());
  EXPECT_EQ(event.occurred_at, at);
  const E* payload = std::get_if<E>(&event.payload);
  EXPECT_NE(payload, nullptr) << "the last event is of another type";
  return payload;
}

}  // namespace shopcqrs::test_support
