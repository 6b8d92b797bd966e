#pragma once

#include <signal.h>

#include "apps/shopcqrs/config.h"

namespace shopcqrs::apps {

// Applies pending migrations to both databases.
void Migrate(const apps::Config& config);

// Runs the roles the configuration asks for until SIGINT/SIGTERM (taken from `signals`, which
// every thread blocks), then stops them gracefully:
//   command, query             the command and the query routes (route_not_served for the
//                              routes of roles not run), /healthz, /readyz, /metrics always;
//   relay (run_relay, nats)    the outbox onto the event stream;
//   projectors (run_projectors) read_pg, search and redis -- or, without them, a progress
//                              follower for the query routes' tokens.
int Serve(const apps::Config& config, const sigset_t& signals);

}  // namespace shopcqrs::apps
