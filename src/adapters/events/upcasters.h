#pragma once

#include <boost/json.hpp>

#include "cqrs/upcasters.h"

namespace shopcqrs::adapters::events {

using PayloadUpcasters = cqrs::UpcasterRegistry<boost::json::object>;

// The shop's upcasters (docs/EVENTS.md): every event type at its current version
// (kCurrentVersions, event_codec.h) and an upcaster from each older version it was ever written
// at. Built and checked on first use; a registration the registry refuses throws
// cqrs::UpcasterRegistrationError there (and fails the codec's tests).
const PayloadUpcasters& Upcasters();

}  // namespace shopcqrs::adapters::events
