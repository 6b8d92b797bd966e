#pragma once

#include <string>

#include "cqrs/envelope.h"
#include "domain/events.h"

namespace shopcqrs::adapters::events {

inline constexpr int kSchemaVersion = 1;

// Serializes a domain event into the engine's envelope (payload as a JSON object with
// snake_case fields, ids as uuid text, money as *_cents integers).
cqrs::EventEnvelope ToEnvelope(const domain::DomainEvent& event, const std::string& event_id);
std::string PayloadJson(const domain::EventPayload& payload);

// The inverse; throws std::runtime_error on an unknown type or a malformed payload.
domain::DomainEvent FromEnvelope(const cqrs::EventEnvelope& envelope);

}  // namespace shopcqrs::adapters::events
