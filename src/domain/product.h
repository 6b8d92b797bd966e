#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/events.h"
#include "domain/ids.h"
#include "domain/values.h"

namespace shopcqrs::domain {

class Product {
 public:
  // sku 1..64, name 1..200, price 0..10^9, stock 0..10^9; records ProductAdded.
  static Result<Product> Add(ProductId id, std::string sku, std::string name,
                             std::int64_t price_cents, std::int64_t stock, Timestamp now);
  static Product Rehydrate(ProductId id, std::string sku, std::string name,
                           std::int64_t price_cents, std::int64_t stock, std::int64_t version);

  // price 0..10^9; records ProductPriceChanged.
  Result<void> ChangePrice(std::int64_t price_cents, Timestamp now);
  // quantity 1..10^9; records ProductRestocked. Stock may not exceed int64 range.
  Result<void> Restock(std::int64_t quantity, Timestamp now);

  // Stock reservation for an order: records no product event and keeps the version (the
  // order's events carry the movement). Fails with 409 insufficient_stock when stock < qty.
  Result<void> Reserve(std::int64_t quantity);
  // Returns reserved stock (an order cancelled). No event, version unchanged.
  void Release(std::int64_t quantity);

  const ProductId& id() const { return id_; }
  const std::string& sku() const { return sku_; }
  const std::string& name() const { return name_; }
  std::int64_t price_cents() const { return price_cents_; }
  std::int64_t stock() const { return stock_; }
  std::int64_t version() const { return version_; }
  const std::vector<DomainEvent>& pending_events() const { return pending_; }

 private:
  Product(ProductId id, std::string sku, std::string name, std::int64_t price_cents,
          std::int64_t stock, std::int64_t version);
  void Record(EventPayload payload, Timestamp now);

  ProductId id_;
  std::string sku_;
  std::string name_;
  std::int64_t price_cents_ = 0;
  std::int64_t stock_ = 0;
  std::int64_t version_ = 0;
  std::vector<DomainEvent> pending_;
};

}  // namespace shopcqrs::domain
