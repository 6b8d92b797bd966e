#pragma once

#include <signal.h>

#include <filesystem>

#include "apps/shopcqrs/config.h"

namespace shopcqrs::apps {

// `shopcqrs up --split`: the roles of `config` each in a supervised child process of their own,
// `shopcqrs serve --config <root>/split.toml --role R --listen ADDRESS`, so that each side can be
// placed and scaled alone; `query_processes` query processes (at least 1). With a listen port P
// the command process serves on P, the query processes on P+1 .. P+N, the relay on P+N+1 and
// the projector on P+N+2; with port 0 each takes a free port. Each child's stdout and
// stderr go to <root>/logs/<role>.log. Once all four serve, prints one line per role
// ("shopcqrs serving http://HOST:PORT (roles R, pid N)"). A child that ends is started again
// (after 1 s, doubling to at most 10 s while it keeps ending within 10 s of its start), on the
// same address. On SIGINT/SIGTERM stops the children (SIGTERM, then SIGKILL after 15 s) and
// returns. Throws std::runtime_error when a child does not serve within a minute.
int ServeSplit(const Config& config, const std::filesystem::path& root, const sigset_t& signals,
               int query_processes = 1);

}  // namespace shopcqrs::apps
