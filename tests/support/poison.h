#pragma once

// Faults for the dead-letter tests, written by SQL: a writer that puts an undecodable payload
// into the outbox, and a read database that refuses an order's shipment.

#include <string>

#include <fmt/format.h>

#include "infra/pg/connection.h"

namespace shopcqrs::test_support {

// From now on, every outbox row of aggregate `aggregate_id`'s events of `type` written to
// `write` carries a payload the codec rejects (a writer's bug).
inline void PoisonPayloads(const std::string& write, const std::string& aggregate_id,
                           const std::string& type) {
  infra::pg::Connection(write).Exec(fmt::format(R"sql(
    CREATE OR REPLACE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.aggregate_id = '{}' AND NEW.event_type = '{}' THEN
        NEW.payload := '{{"order_id": 7}}'::json;
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_poison BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION test_poison();
  )sql",
                                                aggregate_id, type));
}

// The read database `read` refuses to store order `order_id` with a tracking number (think of a
// bad constraint deployed there) until DropRefusal.
inline void RefuseShipments(const std::string& read, const std::string& order_id) {
  infra::pg::Connection(read).Exec(fmt::format(R"sql(
    CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.id = '{}' AND NEW.tracking_number IS NOT NULL THEN
        RAISE EXCEPTION 'shipments of this order are refused';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_refuse BEFORE UPDATE ON order_views FOR EACH ROW
      EXECUTE FUNCTION test_refuse();
  )sql",
                                               order_id));
}

inline void DropRefusal(const std::string& read) {
  infra::pg::Connection(read).Exec("DROP TRIGGER test_refuse ON order_views");
}

}  // namespace shopcqrs::test_support
