#pragma once

#include "application/ports.h"

namespace shopcqrs::adapters::system {

// Wall clock, truncated to milliseconds (the precision of every timestamp we publish).
class SystemClock final : public app::Clock {
 public:
  domain::Timestamp Now() override;
};

// Random (version 4) UUIDs from a per-thread generator seeded by the OS.
class RandomIds final : public app::IdGenerator {
 public:
  domain::Uuid NewId() override;
};

domain::Uuid NewRandomUuid();

}  // namespace shopcqrs::adapters::system
