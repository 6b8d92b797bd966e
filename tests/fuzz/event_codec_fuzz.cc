// libFuzzer harness: the event codec's reading side (adapters/events FromEnvelope), which
// decodes what the outbox and the broker hand to the projectors.
//
// Input: byte 0 picks the event type (mod 11: the ten types of domain/events.h, then one the
// codec does not know), byte 1 the schema version (mod 3: 0, 1 = kSchemaVersion, 2), the rest is
// the payload text. FromEnvelope must answer an event or throw std::runtime_error (its
// contract); an accepted payload must survive the round trip: encoding the event and decoding
// that again gives the same payload text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "adapters/events/event_codec.h"
#include "domain/events.h"

namespace {

constexpr std::string_view kTypes[] = {
    "CustomerRegistered",  "CustomerDetailsChanged", "ProductAdded",
    "ProductPriceChanged", "ProductRestocked",       "OrderPlaced",
    "OrderPaid",           "OrderShipped",           "OrderDelivered",
    "OrderCancelled",      "OrderRefunded"};
constexpr std::size_t kTypeCount = sizeof kTypes / sizeof kTypes[0];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace events = shopcqrs::adapters::events;
  if (size < 2) return 0;
  shopcqrs::cqrs::EventEnvelope envelope;
  envelope.event_id = "00000000-0000-4000-8000-000000000001";
  envelope.type = std::string(kTypes[data[0] % kTypeCount]);
  envelope.schema_version = data[1] % 3;
  envelope.aggregate_id = "00000000-0000-4000-8000-000000000002";
  envelope.aggregate_version = 3;
  envelope.payload.assign(reinterpret_cast<const char*>(data) + 2, size - 2);

  shopcqrs::domain::DomainEvent event;
  try {
    event = events::FromEnvelope(envelope);
  } catch (const std::runtime_error&) {
    return 0;  // rejected, as documented
  }
  if (shopcqrs::domain::EventTypeName(event.payload) != envelope.type) std::abort();
  const auto again = events::ToEnvelope(event, envelope.event_id);
  const auto decoded = events::FromEnvelope(again);  // must not throw
  if (events::PayloadJson(decoded.payload) != again.payload) std::abort();
  return 0;
}
