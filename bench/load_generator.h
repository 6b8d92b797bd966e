#pragma once

// A reusable HTTP/1.1 load generator for shopcqrs benchmarks.
//
// - N clients, each one thread with one keep-alive connection (Boost.Beast tcp_stream), so a
//   client has at most one request in flight.
// - Closed loop: every client sends its next request as soon as the previous answer arrived
//   (maximum throughput for N clients). Open loop: requests are scheduled at a fixed total rate,
//   request i (over all clients) at start + i/rate, and latency is measured from that INTENDED
//   send time, so a stalled server is charged for the requests it kept waiting (no coordinated
//   omission).
// - A warm-up period is run but not recorded; then the measured window of a fixed duration.
// - Latencies go into an HDR-like log-linear histogram (< 0.4% relative error); answers are
//   counted by HTTP status (0 = transport error or timeout).
// - Several endpoints (services over the same data): clients are assigned round-robin.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace shopcqrs::bench {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// Log-linear histogram of non-negative integer values (nanoseconds here): values below 256 are
// exact, above that every power of two is split into 128 linear sub-buckets.
class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(std::int64_t value);
  void Merge(const LatencyHistogram& other);

  std::int64_t count() const { return count_; }
  std::int64_t min() const { return count_ == 0 ? 0 : min_; }
  std::int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }
  // The smallest recorded value v (to the histogram's precision) such that `percentile`
  // percent of the values are <= v; 0 when empty. percentile in [0, 100].
  std::int64_t ValueAtPercentile(double percentile) const;

 private:
  static std::size_t IndexOf(std::uint64_t value);
  static std::uint64_t HighestValueOf(std::size_t index);

  std::vector<std::int64_t> counts_;
  std::int64_t count_ = 0;
  std::int64_t min_ = 0;
  std::int64_t max_ = 0;
  double sum_ = 0;
};

struct HttpRequest {
  std::string method = "POST";
  std::string target;  // origin-form, e.g. /v1/orders
  std::string body;    // sent as application/json when not empty
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  int status = 0;  // 0: transport error or timeout (see error)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string error;

  bool ok() const { return status >= 200 && status < 300; }
  const std::string* Header(std::string_view name) const;
};

// A synchronous keep-alive HTTP/1.1 client with a per-request timeout. Not thread-safe: one
// per thread. Reconnects when the server closed the connection.
class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Opens the connection now (otherwise the first Send does); false on failure.
  bool Connect(std::string* error = nullptr);
  HttpResponse Send(const HttpRequest& request);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses http://HOST:PORT[/...] (no TLS); nullopt when malformed.
struct Endpoint {
  std::string host;
  std::uint16_t port = 80;
};
std::optional<Endpoint> ParseUrl(std::string_view url);

enum class LoadMode { kClosedLoop, kOpenLoop };

struct LoadOptions {
  Endpoint endpoint;
  // When not empty: client c talks to endpoints[c % size()] (round-robin), `endpoint` unused.
  std::vector<Endpoint> endpoints;
  int clients = 8;
  LoadMode mode = LoadMode::kClosedLoop;
  double rate = 0;  // open loop: total requests per second over all clients
  Seconds warmup{2};
  Seconds duration{10};
  std::chrono::milliseconds timeout{10'000};
};

// The next request of `client` (its `sequence`-th, from 0); nullopt when the scenario has run
// out of work, which ends the run for every client (the measured window is then cut short at
// that moment). Called concurrently from the client threads.
using RequestSource = std::function<std::optional<HttpRequest>(int client, std::uint64_t sequence)>;
// Called after every answer (also during warm-up), from the client's thread.
using ResponseHook = std::function<void(int client, const HttpRequest& request,
                                        const HttpResponse& response, Clock::duration latency)>;

struct LoadResult {
  LatencyHistogram latency;              // successful (2xx) answers in the measured window
  std::map<int, std::int64_t> statuses;  // every answer in the measured window, by status
  std::int64_t ok = 0;                   // 2xx answers in the measured window
  std::int64_t errors = 0;               // the others
  std::int64_t warmup_requests = 0;
  double window_seconds = 0;                  // length of the measured window
  double throughput = 0;                      // ok / window_seconds
  double offered_rate = 0;                    // open loop: the target rate
  bool exhausted = false;                     // the request source ran out before the end
  std::vector<std::int64_t> ok_per_second;    // completions per second since start, incl. warm-up
  std::vector<std::int64_t> ok_per_endpoint;  // measured-window 2xx answers per endpoint
  std::string first_error;                    // a sample transport error or error body
};

LoadResult RunLoad(const LoadOptions& options, const RequestSource& source,
                   const ResponseHook& hook = {});

}  // namespace shopcqrs::bench
