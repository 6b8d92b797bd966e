#pragma once

// Helpers of the domain tests.

#include <cstddef>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "domain/error.h"

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

}  // namespace shopcqrs::test_support
