#pragma once

#include <string_view>
#include <vector>

namespace shopcqrs::infra::pg {

// A numbered migration file compiled into the binary (see cmake/embed_migrations.cmake).
struct EmbeddedMigration {
  std::string_view store;  // "pg_write" or "pg_read": the adapter folder it comes from
  int number;              // NNNN of NNNN_name.sql
  std::string_view name;
  std::string_view sql;
};

const std::vector<EmbeddedMigration>& AllEmbeddedMigrations();

}  // namespace shopcqrs::infra::pg
