#include "adapters/pg_write/write_store.h"

#include <chrono>
#include <thread>

#include <boost/json.hpp>

#include "adapters/events/event_codec.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_write/queries.h"
#include "adapters/system/system.h"

namespace shopcqrs::adapters::pg_write {

namespace json = boost::json;
using domain::Customer;
using domain::Order;
using domain::Product;
using infra::pg::ArrayLiteral;
using infra::pg::Params;

namespace {

std::string Ts(domain::Timestamp t) { return domain::FormatTimestamp(t); }

// The advisory-lock key of an aggregate: its first 8 bytes (hash collisions only serialize).
std::int64_t LockKey(const domain::Uuid& id) {
  std::uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = (key << 8) | id.bytes()[i];
  return static_cast<std::int64_t>(key);
}

domain::Timestamp LatestEventTime(const std::vector<domain::DomainEvent>& events) {
  return events.empty() ? domain::Timestamp{} : events.back().occurred_at;
}

std::string ResultJson(const app::CommandResult& r) {
  json::object o{{"id", r.id}, {"version", r.version}, {"created", r.created}};
  auto put = [&](const char* name, const auto& opt) {
    if (opt) o[name] = *opt;
  };
  put("status", r.status);
  put("total_cents", r.total_cents);
  put("name", r.name);
  put("email", r.email);
  put("sku", r.sku);
  put("price_cents", r.price_cents);
  put("stock", r.stock);
  return json::serialize(o);
}

app::CommandResult ResultFromJson(std::string_view text) {
  const auto o = json::parse(text).as_object();
  app::CommandResult r;
  r.id = std::string(o.at("id").as_string());
  r.version = o.at("version").to_number<std::int64_t>();
  r.created = o.at("created").as_bool();
  auto str = [&](const char* name, std::optional<std::string>& out) {
    if (auto* v = o.if_contains(name)) out = std::string(v->as_string());
  };
  auto num = [&](const char* name, std::optional<std::int64_t>& out) {
    if (auto* v = o.if_contains(name)) out = v->to_number<std::int64_t>();
  };
  str("status", r.status);
  num("total_cents", r.total_cents);
  str("name", r.name);
  str("email", r.email);
  str("sku", r.sku);
  num("price_cents", r.price_cents);
  num("stock", r.stock);
  return r;
}

// The state row of an aggregate as kInsertCustomer / kInsertProduct take it; kUpdateCustomer /
// kUpdateProduct take the same, then the version it replaces.
Params RowParams(const Customer& c) {
  Params params;
  params.Add(c.id().ToString()).Add(c.name()).Add(c.email()).Add(c.version());
  params.Add(Ts(LatestEventTime(c.pending_events())));
  return params;
}
Params RowParams(const Product& p) {
  Params params;
  params.Add(p.id().ToString()).Add(p.sku()).Add(p.name()).Add(p.price_cents()).Add(p.stock());
  params.Add(p.version()).Add(Ts(LatestEventTime(p.pending_events())));
  return params;
}

Product ProductFromRow(const infra::pg::Result& rows, int i) {
  auto id = domain::ProductId::Parse(rows.Text(i, 0));
  return Product::Rehydrate(*id, rows.String(i, 1), rows.String(i, 2), rows.Int64(i, 3),
                            rows.Int64(i, 4), rows.Int64(i, 5));
}

class PgWriteTransaction final : public app::WriteTransaction {
 public:
  PgWriteTransaction(infra::pg::Pool::Lease lease, const cqrs::ConsistencyTokens& tokens,
                     CommitNotifier& notifier)
      : lease_(std::move(lease)), tokens_(tokens), notifier_(notifier), pipeline_(*lease_) {
    pipeline_.AddText("BEGIN");
  }

  void LockAggregate(const domain::Uuid& aggregate_id) override {
    pipeline_.Add(queries::kLockAggregate, Params().Add(LockKey(aggregate_id)));
  }

  std::optional<app::StoredCommand> FindIdempotencyKey(const std::string& key) override {
    auto rows = Load(queries::kFindIdempotencyKey, Params().Add(key));
    if (rows.rows() == 0) return std::nullopt;
    // The first request records its commit bound right after its commit. A retry racing it
    // may read the row in between: wait a moment for the bound, so the replay answers the
    // same body. Only if the first request died right there is a fresh token answered.
    for (int attempt = 0; rows.IsNull(0, 2) && attempt < 100; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      rows = Load(queries::kFindIdempotencyKey, Params().Add(key));
    }
    app::StoredCommand stored{rows.String(0, 0), ResultFromJson(rows.Text(0, 1))};
    if (auto bound = rows.OptInt64(0, 2)) {
      stored.result.consistency_token = tokens_.Encode(static_cast<std::uint64_t>(*bound));
    }
    return stored;
  }

  std::optional<Customer> LoadCustomer(const domain::CustomerId& id) override {
    auto rows = Load(queries::kLoadCustomer, Params().Add(id.ToString()));
    if (rows.rows() == 0) return std::nullopt;
    return Customer::Rehydrate(id, rows.String(0, 0), rows.String(0, 1), rows.Int64(0, 2));
  }

  bool CustomerExists(const domain::CustomerId& id) override {
    return Load(queries::kCustomerExists, Params().Add(id.ToString())).rows() == 1;
  }

  std::optional<Product> LoadProduct(const domain::ProductId& id) override {
    auto rows = Load(queries::kLoadProduct, Params().Add(id.ToString()));
    if (rows.rows() == 0) return std::nullopt;
    return ProductFromRow(rows, 0);
  }

  std::vector<Product> LoadProductsForUpdate(const std::vector<domain::ProductId>& ids) override {
    if (ids.empty()) return {};
    auto rows = Load(queries::kLoadProductsForUpdate,
                     Params().Add(ArrayLiteral(ids, [](const auto& id) { return id.ToString(); })));
    std::vector<Product> products;
    products.reserve(rows.rows());
    for (int i = 0; i < rows.rows(); ++i) products.push_back(ProductFromRow(rows, i));
    return products;
  }

  std::optional<Order> LoadOrder(const domain::OrderId& id) override {
    pipeline_.Add(queries::kLoadOrder, Params().Add(id.ToString()));
    pipeline_.Add(queries::kLoadOrderLines, Params().Add(id.ToString()));
    auto results = Run();
    const auto& order = results[results.size() - 2];
    const auto& lines = results.back();
    if (order.rows() == 0) return std::nullopt;
    Order::State state;
    state.id = id;
    state.customer_id = *domain::CustomerId::Parse(order.Text(0, 0));
    state.status = *domain::ParseOrderStatus(order.Text(0, 1));
    state.total_cents = order.Int64(0, 2);
    state.version = order.Int64(0, 3);
    for (int i = 0; i < lines.rows(); ++i) {
      state.lines.push_back(domain::PlacedLine{*domain::ProductId::Parse(lines.Text(i, 0)),
                                               lines.String(i, 1), lines.String(i, 2),
                                               lines.Int64(i, 3), lines.Int64(i, 4)});
    }
    return Order::Rehydrate(std::move(state));
  }

  void InsertCustomer(const Customer& c) override { QueueRow(queries::kInsertCustomer, c); }
  void UpdateCustomer(const Customer& c, std::int64_t previous_version) override {
    QueueRow(queries::kUpdateCustomer, c, previous_version);
  }
  void InsertProduct(const Product& p) override { QueueRow(queries::kInsertProduct, p); }
  void UpdateProduct(const Product& p, std::int64_t previous_version) override {
    QueueRow(queries::kUpdateProduct, p, previous_version);
  }

  void UpdateStock(const std::vector<Product>& products) override {
    if (products.empty()) return;
    pipeline_.Add(
        queries::kUpdateStock,
        Params()
            .Add(ArrayLiteral(products, [](const Product& p) { return p.id().ToString(); }))
            .Add(ArrayLiteral(products, [](const Product& p) { return std::to_string(p.stock()); }))
            .Add(Ts(system::SystemClock().Now())));
  }

  void InsertOrder(const Order& o) override {
    const auto id = o.id().ToString();
    pipeline_.Add(queries::kInsertOrder, Params()
                                             .Add(id)
                                             .Add(o.customer_id().ToString())
                                             .Add(o.total_cents())
                                             .Add(o.version())
                                             .Add(Ts(LatestEventTime(o.pending_events()))));
    const auto& lines = o.lines();
    using Line = domain::PlacedLine;
    pipeline_.Add(
        queries::kInsertOrderLines,
        Params()
            .Add(id)
            .Add(ArrayLiteral(lines, [](const Line& l) { return l.product_id.ToString(); }))
            .Add(ArrayLiteral(lines, [](const Line& l) { return l.sku; }))
            .Add(ArrayLiteral(lines, [](const Line& l) { return l.product_name; }))
            .Add(ArrayLiteral(lines, [](const Line& l) { return std::to_string(l.quantity); }))
            .Add(ArrayLiteral(lines,
                              [](const Line& l) { return std::to_string(l.unit_price_cents); })));
  }

  void UpdateOrder(const Order& o, std::int64_t previous_version) override {
    const auto id = o.id().ToString();
    const auto when = Ts(LatestEventTime(o.pending_events()));
    bool cancelled = false;
    for (const auto& event : o.pending_events()) {
      std::visit(
          [&](const auto& e) {
            using E = std::decay_t<decltype(e)>;
            const auto at = Ts(event.occurred_at);
            if constexpr (std::is_same_v<E, domain::OrderPaid>) {
              pipeline_.Add(queries::kInsertPayment,
                            Params().Add(id).Add(e.amount_cents).Add(e.payment_reference).Add(at));
            } else if constexpr (std::is_same_v<E, domain::OrderShipped>) {
              pipeline_.Add(queries::kInsertShipment,
                            Params().Add(id).Add(e.tracking_number).Add(at));
            } else if constexpr (std::is_same_v<E, domain::OrderDelivered>) {
              pipeline_.Add(queries::kDeliverShipment, Params().Add(id).Add(at));
            } else if constexpr (std::is_same_v<E, domain::OrderCancelled>) {
              cancelled = true;
              pipeline_.Add(
                  queries::kCancelOrder,
                  Params().Add(id).Add(o.version()).Add(at).Add(e.reason).Add(previous_version));
              if (e.refunded_cents > 0) {
                pipeline_.Add(queries::kRefundPayment,
                              Params().Add(id).Add(e.refunded_cents).Add(at));
              }
            }
          },
          event.payload);
    }
    if (!cancelled) {
      pipeline_.Add(queries::kUpdateOrder, Params()
                                               .Add(id)
                                               .Add(std::string(domain::ToString(o.status())))
                                               .Add(o.version())
                                               .Add(when)
                                               .Add(previous_version));
    }
  }

  void AppendEvents(const std::vector<domain::DomainEvent>& events) override {
    for (const auto& event : events) {
      auto envelope = events::ToEnvelope(event, system::NewRandomUuid().ToString());
      pipeline_.Add(queries::kAppendEvent, Params()
                                               .Add(envelope.event_id)
                                               .Add(envelope.type)
                                               .Add(envelope.schema_version)
                                               .Add(envelope.aggregate_type)
                                               .Add(envelope.aggregate_id)
                                               .Add(envelope.aggregate_version)
                                               .Add(Ts(envelope.occurred_at))
                                               .Add(envelope.payload));
    }
  }

  void SaveIdempotencyKey(const app::Idempotency& idempotency,
                          const app::CommandResult& result) override {
    // Ahead of the command's writes: a concurrent retry with the same key then waits on this
    // row and fails on its primary key (and is retried into a replay), rather than on a
    // business constraint such as the e-mail the first request just took.
    pipeline_.AddFirst(
        queries::kInsertIdempotencyKey,
        Params().Add(idempotency.key).Add(idempotency.fingerprint).Add(ResultJson(result)));
    idempotency_key_ = idempotency.key;
  }

  domain::Result<std::string> Commit() override {
    pipeline_.AddText("COMMIT");
    if (idempotency_key_) {
      pipeline_.Add(queries::kRecordIdempotencyBound, Params().Add(*idempotency_key_));
    } else {
      pipeline_.Add(queries::kCommitBound);
    }
    try {
      auto results = Run();
      notifier_.Signal();
      return tokens_.Encode(static_cast<std::uint64_t>(results.back().Int64(0, 0)));
    } catch (const infra::pg::PgError& error) {
      if (error.IsUniqueViolation()) {
        if (error.constraint() == "customers_email_key") {
          return std::unexpected(domain::Conflict("email_taken", "the e-mail is already taken"));
        }
        if (error.constraint() == "products_sku_key") {
          return std::unexpected(domain::Conflict("sku_taken", "the SKU is already taken"));
        }
      }
      throw;
    }
  }

 private:
  // Queues `statement` with the row of `aggregate`, and the version it replaces if it updates.
  template <class Aggregate>
  void QueueRow(const infra::pg::Statement& statement, const Aggregate& aggregate,
                std::optional<std::int64_t> previous_version = std::nullopt) {
    Params params = RowParams(aggregate);
    if (previous_version) params.Add(*previous_version);
    pipeline_.Add(statement, std::move(params));
  }

  infra::pg::Result Load(const infra::pg::Statement& statement, Params params) {
    pipeline_.Add(statement, std::move(params));
    return Run().back();
  }

  // Sends what is queued; store faults a retry may cure become TransientStoreError, a lost
  // connection StoreUnavailable (the port's words).
  std::vector<infra::pg::Result> Run() {
    try {
      return pipeline_.Run();
    } catch (const infra::pg::ConnectionLost& error) {
      throw app::StoreUnavailable(error.what());
    } catch (const infra::pg::PgError& error) {
      const bool lost_race =
          error.IsUniqueViolation() && (error.constraint() == "idempotency_keys_pkey" ||
                                        error.constraint() == "outbox_aggregate_version_key");
      if (error.IsRetryable() || lost_race) throw app::TransientStoreError(error.what());
      throw;
    }
  }

  infra::pg::Pool::Lease lease_;
  const cqrs::ConsistencyTokens& tokens_;
  CommitNotifier& notifier_;
  infra::pg::Connection::Pipeline pipeline_;
  std::optional<std::string> idempotency_key_;
};

}  // namespace

infra::pg::Pool::Options WritePoolOptions(std::string conninfo, int size) {
  infra::pg::Pool::Options options;
  options.conninfo = std::move(conninfo);
  options.size = size;
  // enable_seqscan = off: every command statement reads and writes rows by key. The statements
  // are prepared when a session opens, often on a still empty database, and PostgreSQL may keep
  // the generic plan made then -- for the stock update a hash join over a sequential scan of all
  // products, paid by every order on a grown catalogue. Priced out, the plan is the key index.
  // jit = off: that price would lift a plan above the JIT thresholds; short statements never gain.
  options.on_connect = [](infra::pg::Connection& connection) {
    connection.Exec(
        "SET application_name = 'shopcqrs-write'; SET enable_seqscan = off; SET jit = off");
    connection.Exec(queries::kRecordSessionEpoch);
    connection.PrepareAll(queries::All());
  };
  return options;
}

PgWriteStore::PgWriteStore(infra::pg::Pool& pool, const cqrs::ConsistencyTokens& tokens)
    : pool_(pool),
      tokens_(tokens),
      notifier_(std::make_unique<CommitNotifier>(pool.conninfo(), pg_outbox::kOutboxChannel)) {}

PgWriteStore::~PgWriteStore() = default;

std::unique_ptr<app::WriteTransaction> PgWriteStore::Begin() {
  try {
    return std::make_unique<PgWriteTransaction>(pool_.Acquire(), tokens_, *notifier_);
  } catch (const infra::pg::ConnectionLost& error) {
    throw app::StoreUnavailable(error.what());
  }
}

std::string PgWriteStore::CurrentToken() {
  try {
    auto lease = pool_.Acquire();
    auto rows = lease->ExecPrepared(queries::kCommitBound, {});
    return tokens_.Encode(static_cast<std::uint64_t>(rows.Int64(0, 0)));
  } catch (const infra::pg::ConnectionLost& error) {
    throw app::StoreUnavailable(error.what());
  }
}

}  // namespace shopcqrs::adapters::pg_write
