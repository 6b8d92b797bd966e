#pragma once

#include <array>
#include <string>
#include <string_view>

#include "cqrs/envelope.h"
#include "cqrs/projector.h"
#include "domain/events.h"

namespace shopcqrs::adapters::events {

// The schema version each event type is written at today (docs/EVENTS.md). A change of an
// event's JSON form bumps its version here and registers the upcaster from the old version in
// upcasters.cc; a stored event keeps the version it was written at forever.
struct TypeVersion {
  std::string_view type;
  int version;
};
inline constexpr std::array<TypeVersion, 10> kCurrentVersions = {{
    {domain::CustomerRegistered::kTypeName, 1},
    {domain::CustomerDetailsChanged::kTypeName, 1},
    {domain::ProductAdded::kTypeName, 1},
    // v2: the new price is price_cents (as in ProductAdded), the old one previous_price_cents.
    {domain::ProductPriceChanged::kTypeName, 2},
    {domain::ProductRestocked::kTypeName, 1},
    {domain::OrderPlaced::kTypeName, 1},
    {domain::OrderPaid::kTypeName, 1},
    {domain::OrderShipped::kTypeName, 1},
    {domain::OrderDelivered::kTypeName, 1},
    {domain::OrderCancelled::kTypeName, 1},
}};

// The version `type` is written at today; 0 if it is no event type.
int CurrentVersion(std::string_view type);

// Serializes a domain event into the engine's envelope at its type's current version (payload
// as a JSON object with snake_case fields, ids as uuid text, money as *_cents integers).
cqrs::EventEnvelope ToEnvelope(const domain::DomainEvent& event, const std::string& event_id);
std::string PayloadJson(const domain::EventPayload& payload);

// The inverse, for the current version and every older one the upcasters (upcasters.h) read:
// an older payload is upcast to the current form first. Throws std::runtime_error on an unknown
// type, a version it cannot read (e.g. one newer than the current version) or a malformed
// payload.
domain::DomainEvent FromEnvelope(const cqrs::EventEnvelope& envelope);

// How every projection decodes the events it is given: FromEnvelope, a failure thrown as
// cqrs::DeterministicApplyError naming the event and its position (a poison event: the projector
// parks it, cqrs/dead_letters.h).
domain::DomainEvent DecodeStored(const cqrs::StoredEvent& stored);

// The type `envelope` decodes as (its stored type, renamed by the upcasters where they rename
// it), or its stored type if no upcaster reads it; for choosing events before decoding them.
std::string_view DecodedTypeName(const cqrs::EventEnvelope& envelope);

}  // namespace shopcqrs::adapters::events
