#pragma once

#include <string>
#include <string_view>

namespace shopcqrs::infra::pg {

// Applies the embedded migrations of one store ("pg_write" or "pg_read") that the database
// has not seen yet, each in its own transaction together with its schema_migrations row.
// Safe to run twice and from several processes at once: a session advisory lock serializes
// the runners, and a runner that got the lock second finds nothing left to do. Answers the
// number of migrations applied.
int ApplyMigrations(const std::string& conninfo, std::string_view store);

}  // namespace shopcqrs::infra::pg
