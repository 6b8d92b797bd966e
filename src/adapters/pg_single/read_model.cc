#include "adapters/pg_single/read_model.h"

#include "adapters/pg_single/queries.h"

namespace shopcqrs::adapters::pg_single {

// The model itself is pg_read's: only the statements differ, and they return the same
// columns, so both modes answer identically (tests/integration/single_db_test.cc).

infra::pg::Pool::Options SinglePoolOptions(std::string conninfo, int size) {
  infra::pg::Pool::Options options;
  options.conninfo = std::move(conninfo);
  options.size = size;
  options.on_connect = [](infra::pg::Connection& connection) {
    connection.Exec(
        "SET application_name = 'shopcqrs-single'; SET TimeZone = 'UTC'; "
        "SET default_transaction_read_only = on");
    connection.PrepareAll(queries::All());
  };
  return options;
}

const pg_read::QueryStatements& SingleStatements() {
  static const pg_read::QueryStatements kStatements{
      &queries::kGetOrder,           &queries::kListOrders,   &queries::kListOrdersByCustomer,
      &queries::kListOrdersByStatus, &queries::kGetCustomer,  &queries::kGetProduct,
      &queries::kTopProducts,        &queries::kSearchOrders, &queries::kDailySales};
  return kStatements;
}

}  // namespace shopcqrs::adapters::pg_single
