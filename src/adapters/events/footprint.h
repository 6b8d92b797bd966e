#pragma once

#include <string>
#include <vector>

#include "cqrs/stored_event.h"

namespace shopcqrs::adapters::events {

// The read rows a stored event changes in the shop's read models, as the keys of
// cqrs::ParkedEvent: "order:<id>" (the order's view and its place in order lists and search),
// "customer:<id>" (the customer's details, also shown on each of its orders),
// "customer-of:<id>" (a customer's statistics and order list, which its orders' events change),
// "product:<id>" (a product's view, stock and sales; also the top sellers) and
// "day:<days since the epoch>" (daily sales). An event that does not decode (a poison event)
// names its aggregate only ("order:<id>", "customer:<id>" or "product:<id>").
std::vector<std::string> Footprint(const cqrs::StoredEvent& event);

}  // namespace shopcqrs::adapters::events
