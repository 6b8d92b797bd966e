#pragma once

#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "apps/shopcqrs/config.h"

namespace shopcqrs::apps {

// How `up --split` lays the roles out.
struct SplitOptions {
  int query_processes = 1;  // at least 1
  // The read PostgreSQL servers: config.read_db, then these. Read server k (k > 1) is fed by a
  // projector process of its own (read_pg and search; the one Redis is fed by the first), and
  // query process i reads read server (i mod servers) + 1.
  std::vector<std::string> more_read_dbs;
};

// Writes `config` as <root>/<name>, mode 0600 (it holds the token secret, the signing key and
// any passwords).
std::filesystem::path WriteConfigFile(const Config& config, const std::filesystem::path& root,
                                      const std::string& name);

// `shopcqrs up --split`: the roles of `config` each in a supervised child process of their own,
// `shopcqrs serve --config <root>/split*.toml --role R --listen ADDRESS`, so that each side can
// be placed and scaled alone. With a listen port P the command process serves on P, the Q query
// processes on P+1 .. P+Q, the relay on P+Q+1 and the projectors (one per read server) from
// P+Q+2 on; with port 0 each takes a free port. Each child's stdout and stderr go to
// <root>/logs/<name>.log. Once all serve, prints one line per process
// ("shopcqrs serving http://HOST:PORT (roles R, pid N)"), then which read server each query
// and projector process uses. A child that ends is started again (after 1 s, doubling to at
// most 10 s while it keeps ending within 10 s of its start), on the same address. On
// SIGINT/SIGTERM stops the children (SIGTERM, then SIGKILL after 15 s) and returns. Throws
// std::runtime_error when a child does not serve within a minute.
int ServeSplit(const Config& config, const std::filesystem::path& root, const sigset_t& signals,
               const SplitOptions& options = {});

}  // namespace shopcqrs::apps
