#include "adapters/events/upcasters.h"

#include <stdexcept>
#include <string>
#include <string_view>

#include "adapters/events/event_codec.h"

namespace shopcqrs::adapters::events {

namespace json = boost::json;

namespace {

// Removes field `name` from `payload` and answers its value; throws if it is missing.
json::value Take(json::object& payload, std::string_view name) {
  auto it = payload.find(name);
  if (it == payload.end()) throw std::runtime_error("payload lacks field " + std::string(name));
  json::value value = std::move(it->value());
  payload.erase(it);
  return value;
}

// ProductPriceChanged v1 {product_id, old_price_cents, new_price_cents} ->
// v2 {product_id, price_cents, previous_price_cents}: v2 names the price the product has now
// price_cents, as ProductAdded and the product views do.
void ProductPriceChangedV1ToV2(json::object& payload) {
  json::value previous = Take(payload, "old_price_cents");
  json::value price = Take(payload, "new_price_cents");
  payload["price_cents"] = std::move(price);
  payload["previous_price_cents"] = std::move(previous);
}

PayloadUpcasters Build() {
  PayloadUpcasters::Builder builder;
  for (const auto& [type, version] : kCurrentVersions) builder.Current(std::string(type), version);
  builder.Add(std::string(domain::ProductPriceChanged::kTypeName), 1, &ProductPriceChangedV1ToV2);
  return builder.Build();
}

}  // namespace

const PayloadUpcasters& Upcasters() {
  static const PayloadUpcasters registry = Build();
  return registry;
}

}  // namespace shopcqrs::adapters::events
