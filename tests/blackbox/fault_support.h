#pragma once

// Support for the black-box fault test (fault_test.cc): a private `shopcqrs up` that can be
// killed with SIGKILL and started again on the same data directory and the same listen address.
// The process helpers that find the servers it runs are in shopcqrs_process.h.
//
// The suite's shared service (service_fixture.h) is never touched: the fault test kills servers,
// and other tests run against the shared one.

#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "blackbox/service_fixture.h"

namespace shopcqrs::blackbox::fault {

// ---------------------------------------------------------------------------------------------
// A private `shopcqrs up` on a fixed data directory and listen address.
// ---------------------------------------------------------------------------------------------

// Runs `shopcqrs up --data-dir <tmp>/data --listen 127.0.0.1:<port>`; Start() may be called again
// after Kill() (a new process on the same data directory and address, as an operator would
// restart it). Each start's stdout goes to its own file (stdout.N.log), stderr of all starts to
// stderr.log. Start() must run on a thread that outlives the service (the test's main thread):
// see ShopcqrsProcess.
//
// Kill() leaves what `up` ran as the kernel leaves it. The destructor stops the service
// (SIGTERM), then ends whatever a killed `up` left running in its directory (PostgreSQL: fast
// shutdown; anything else naming the directory: SIGKILL, by pid) and removes the directory
// unless SHOPCQRS_BLACKBOX_KEEP is set.
class UpInstance : public ShopcqrsProcess {
 public:
  // `extra_args` go after up's own (e.g. "--split").
  explicit UpInstance(std::string name = "shopcqrs-fault", std::vector<std::string> extra_args = {})
      : root_(name), port_(FreeTcpPort()), extra_args_(std::move(extra_args)) {}
  ~UpInstance() override {
    try {
      Stop();
      EndLeftovers();
    } catch (...) {
    }
  }

  // Spawns `up` and waits for its "serving" line (on our address). Throws std::runtime_error
  // with the log tails when it exits first or `timeout` passes (it is then killed).
  void Start(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    if (running()) throw std::runtime_error("already running");
    ++starts_;
    Launch launch{
        .args = {"up", "--data-dir", data_dir(), "--listen", host() + ":" + std::to_string(port_)},
        .stdout_path = stdout_path(),
        .stderr_path = stderr_path()};
    launch.args.insert(launch.args.end(), extra_args_.begin(), extra_args_.end());
    Spawn(std::move(launch));
    const Endpoint served = WaitUntilServing(timeout);
    if (served.port != port_) {
      Kill();
      Fail("serves on port " + std::to_string(served.port) + ", not " + std::to_string(port_));
    }
  }

  std::string host() const { return "127.0.0.1"; }
  unsigned short port() const { return port_; }
  Endpoint endpoint() const { return Endpoint{host(), port_}; }
  const std::string& root() const { return root_.path(); }
  std::string data_dir() const { return root_.data_dir(); }
  int starts() const { return starts_; }
  std::string stdout_path() const { return root() + "/stdout." + std::to_string(starts_) + ".log"; }
  std::string stderr_path() const { return root() + "/stderr.log"; }

  // Live processes other than `up` itself whose command line names our directory.
  std::vector<pid_t> Leftovers() const {
    std::vector<pid_t> pids = ProcessesMentioning(root());
    std::erase(pids, pid());
    return pids;
  }

 private:
  // After a killed `up`: fast shutdown of the PostgreSQL servers it left, then SIGKILL to
  // anything else still naming our directory.
  void EndLeftovers() {
    StopPostmastersUnder(data_dir());
    for (int round = 0; round < 50; ++round) {
      const auto pids = Leftovers();
      if (pids.empty()) return;
      for (const pid_t pid : pids) ::kill(pid, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  TempRoot root_;
  unsigned short port_ = 0;
  std::vector<std::string> extra_args_;
  int starts_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Small things.
// ---------------------------------------------------------------------------------------------

// The nearest-rank percentile `p` (0..1) of `values` (-1 when empty).
inline double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

// YYYY-MM-DD (UTC) of `t`.
inline std::string UtcDate(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char out[16];
  std::strftime(out, sizeof out, "%Y-%m-%d", &tm);
  return out;
}

// An integer environment variable, `fallback` when unset or not a number.
inline long EnvLong(const char* name, long fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  return end != nullptr && *end == '\0' ? parsed : fallback;
}

inline std::string EnvString(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

}  // namespace shopcqrs::blackbox::fault
