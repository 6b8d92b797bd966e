#include "domain/product.h"

#include <limits>
#include <utility>

namespace shopcqrs::domain {

Product::Product(ProductId id, std::string sku, std::string name, std::int64_t price_cents,
                 std::int64_t stock, std::int64_t version)
    : id_(id),
      sku_(std::move(sku)),
      name_(std::move(name)),
      price_cents_(price_cents),
      stock_(stock),
      version_(version) {}

Result<Product> Product::Add(ProductId id, std::string sku, std::string name,
                             std::int64_t price_cents, std::int64_t stock, Timestamp now) {
  auto valid_sku = Sku::Create(std::move(sku));
  if (!valid_sku) return std::unexpected(valid_sku.error());
  auto valid_name = Name::Create(std::move(name));
  if (!valid_name) return std::unexpected(valid_name.error());
  auto valid_price = CheckRange(price_cents, 0, kMaxPriceCents, "price_cents");
  if (!valid_price) return std::unexpected(valid_price.error());
  auto valid_stock = CheckRange(stock, 0, kMaxStock, "stock");
  if (!valid_stock) return std::unexpected(valid_stock.error());

  Product product(id, valid_sku->value(), valid_name->value(), price_cents, stock, 0);
  product.Record(ProductAdded{id, product.sku_, product.name_, price_cents, stock}, now);
  return product;
}

Product Product::Rehydrate(ProductId id, std::string sku, std::string name,
                           std::int64_t price_cents, std::int64_t stock, std::int64_t version) {
  return Product(id, std::move(sku), std::move(name), price_cents, stock, version);
}

Result<void> Product::ChangePrice(std::int64_t price_cents, Timestamp now) {
  auto valid_price = CheckRange(price_cents, 0, kMaxPriceCents, "price_cents");
  if (!valid_price) return std::unexpected(valid_price.error());

  const std::int64_t previous_price = price_cents_;
  price_cents_ = price_cents;
  Record(
      ProductPriceChanged{
          .product_id = id_, .price_cents = price_cents_, .previous_price_cents = previous_price},
      now);
  return {};
}

Result<void> Product::Restock(std::int64_t quantity, Timestamp now) {
  auto valid_quantity = CheckRange(quantity, 1, kMaxRestockQuantity, "quantity");
  if (!valid_quantity) return std::unexpected(valid_quantity.error());
  if (stock_ > std::numeric_limits<std::int64_t>::max() - quantity) {
    return std::unexpected(ValidationFailed("quantity would make stock exceed its maximum"));
  }

  stock_ += quantity;
  Record(ProductRestocked{id_, quantity, stock_}, now);
  return {};
}

Result<void> Product::Reserve(std::int64_t quantity) {
  auto valid_quantity =
      CheckRange(quantity, 1, std::numeric_limits<std::int64_t>::max(), "quantity");
  if (!valid_quantity) return std::unexpected(valid_quantity.error());
  if (stock_ < quantity) {
    return std::unexpected(Conflict(
        "insufficient_stock", "insufficient stock for product " + id_.ToString() + " (sku " + sku_ +
                                  "): requested " + std::to_string(quantity) + ", available " +
                                  std::to_string(stock_)));
  }
  stock_ -= quantity;
  return {};
}

void Product::Release(std::int64_t quantity) {
  if (quantity <= 0) return;  // nothing to return
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  stock_ = stock_ > kMax - quantity ? kMax : stock_ + quantity;
}

void Product::Record(EventPayload payload, Timestamp now) {
  ++version_;
  pending_.push_back(DomainEvent{std::move(payload), version_, now});
}

}  // namespace shopcqrs::domain
