#include "load_generator.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <latch>
#include <limits>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace shopcqrs::bench {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// ---- LatencyHistogram ----

namespace {
constexpr int kSubBucketBits = 7;                                    // 128 sub-buckets per octave
constexpr std::uint64_t kExactLimit = 1ULL << (kSubBucketBits + 1);  // values below are exact
constexpr std::size_t kSubBuckets = 1ULL << kSubBucketBits;
constexpr std::size_t kBucketCount = kExactLimit + (64 - (kSubBucketBits + 1)) * kSubBuckets;
}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

std::size_t LatencyHistogram::IndexOf(std::uint64_t value) {
  if (value < kExactLimit) return static_cast<std::size_t>(value);
  const int exponent = 63 - std::countl_zero(value);  // >= kSubBucketBits + 1
  const int shift = exponent - kSubBucketBits;
  const std::uint64_t mantissa = value >> shift;  // in [kSubBuckets, 2 * kSubBuckets)
  return kExactLimit + static_cast<std::size_t>(exponent - (kSubBucketBits + 1)) * kSubBuckets +
         static_cast<std::size_t>(mantissa - kSubBuckets);
}

std::uint64_t LatencyHistogram::HighestValueOf(std::size_t index) {
  if (index < kExactLimit) return index;
  const std::size_t offset = index - kExactLimit;
  const int exponent = static_cast<int>(offset / kSubBuckets) + kSubBucketBits + 1;
  const std::uint64_t mantissa = kSubBuckets + offset % kSubBuckets;
  const int shift = exponent - kSubBucketBits;
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::Record(std::int64_t value) {
  if (value < 0) value = 0;
  ++counts_[IndexOf(static_cast<std::uint64_t>(value))];
  if (count_ == 0 || value < min_) min_ = value;
  max_ = std::max(max_, value);
  ++count_;
  sum_ += static_cast<double>(value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

std::int64_t LatencyHistogram::ValueAtPercentile(double percentile) const {
  if (count_ == 0) return 0;
  percentile = std::clamp(percentile, 0.0, 100.0);
  auto rank =
      static_cast<std::int64_t>(std::ceil(percentile / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::int64_t>(rank, 1, count_);
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const auto value = static_cast<std::int64_t>(HighestValueOf(i));
      return std::clamp(value, min_, max_);
    }
  }
  return max_;
}

// ---- HttpResponse ----

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return &value;
  }
  return nullptr;
}

// ---- HttpClient ----

class HttpClient::Impl {
 public:
  Impl(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {
    host_header_ = host_ + ":" + std::to_string(port_);
    if (const char* token = std::getenv("SHOPCQRS_ACCESS_TOKEN"); token != nullptr && *token) {
      access_token_ = std::string("Bearer ") + token;
    }
  }

  bool Connect(std::string* error) {
    Close();
    beast::error_code ec;
    if (endpoints_.empty()) {
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(host_, std::to_string(port_), ec);
      if (ec) return Fail(error, "resolve " + host_ + ": " + ec.message());
      for (const auto& entry : results) endpoints_.push_back(entry.endpoint());
    }
    stream_.emplace(ioc_);
    stream_->expires_after(timeout_);
    stream_->async_connect(
        endpoints_, [&](beast::error_code connect_ec, const tcp::endpoint&) { ec = connect_ec; });
    Run();
    if (ec) {
      Close();
      return Fail(error, "connect " + host_header_ + ": " + ec.message());
    }
    stream_->socket().set_option(tcp::no_delay(true), ec);
    return true;
  }

  HttpResponse Send(const HttpRequest& request) {
    bhttp::request<bhttp::string_body> message;
    message.method_string(request.method);
    message.target(request.target);
    message.version(11);
    message.set(bhttp::field::host, host_header_);
    message.set(bhttp::field::user_agent, "shopcqrs-bench");
    if (!request.body.empty()) message.set(bhttp::field::content_type, "application/json");
    // The service's access token (SHOPCQRS_ACCESS_TOKEN, e.g. the content of `up`'s
    // <data-dir>/admin-token) unless the request names its own.
    if (!access_token_.empty()) message.set(bhttp::field::authorization, access_token_);
    for (const auto& [name, value] : request.headers) message.set(name, value);
    message.body() = request.body;
    message.keep_alive(true);
    message.prepare_payload();

    HttpResponse response;
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool fresh = !stream_;
      if (fresh && !Connect(&response.error)) return response;
      beast::error_code ec;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      stream_->expires_after(timeout_);
      bhttp::async_write(*stream_, message, [&](beast::error_code write_ec, std::size_t) {
        ec = write_ec;
        if (ec) return;
        bhttp::async_read(*stream_, buffer_, parser,
                          [&](beast::error_code read_ec, std::size_t) { ec = read_ec; });
      });
      Run();
      if (!ec) {
        auto& answer = parser.get();
        response.status = static_cast<int>(answer.result_int());
        response.body = std::move(answer.body());
        response.headers.reserve(8);
        for (const auto& field : answer) {
          response.headers.emplace_back(std::string(field.name_string()),
                                        std::string(field.value()));
        }
        if (!answer.keep_alive()) Close();
        return response;
      }
      Close();
      // A kept-alive connection the server closed meanwhile: retry once on a new one.
      const bool stale = !fresh && !parser.got_some() &&
                         (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
                          ec == net::error::connection_reset || ec == net::error::broken_pipe);
      if (!stale) {
        response.error = ec == beast::error::timeout ? "timeout" : ec.message();
        return response;
      }
    }
    response.error = "connection closed by the server";
    return response;
  }

 private:
  static bool Fail(std::string* error, std::string text) {
    if (error) *error = std::move(text);
    return false;
  }

  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  void Close() {
    if (!stream_) return;
    beast::error_code ec;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_->close();
    stream_.reset();
    buffer_.clear();
  }

  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::string host_header_;
  std::string access_token_;  // "Bearer ..." or empty
  net::io_context ioc_{1};
  std::vector<tcp::endpoint> endpoints_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(host), port, timeout)) {}
HttpClient::~HttpClient() = default;
bool HttpClient::Connect(std::string* error) { return impl_->Connect(error); }
HttpResponse HttpClient::Send(const HttpRequest& request) { return impl_->Send(request); }

std::optional<Endpoint> ParseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  url.remove_prefix(kScheme.size());
  url = url.substr(0, url.find('/'));
  Endpoint endpoint;
  const auto colon = url.rfind(':');
  if (colon == std::string_view::npos) {
    endpoint.host = std::string(url);
  } else {
    endpoint.host = std::string(url.substr(0, colon));
    const auto port_text = url.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return std::nullopt;
    }
    endpoint.port = static_cast<std::uint16_t>(port);
  }
  if (endpoint.host.empty()) return std::nullopt;
  return endpoint;
}

// ---- RunLoad ----

namespace {

struct Sample {
  std::int64_t sent_ns;  // (intended) send time, since start
  std::int64_t done_ns;  // answer time, since start
  std::int64_t latency_ns;
  int status;
};

struct ClientRecord {
  std::size_t endpoint = 0;  // index into the endpoints
  std::vector<Sample> samples;
  std::vector<std::int64_t> ok_per_second;
  std::string first_error;
};

std::int64_t Nanos(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace

LoadResult RunLoad(const LoadOptions& options, const RequestSource& source,
                   const ResponseHook& hook) {
  const int clients = std::max(1, options.clients);
  const bool open_loop = options.mode == LoadMode::kOpenLoop && options.rate > 0;
  std::vector<ClientRecord> records(static_cast<std::size_t>(clients));
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> exhausted_at{std::numeric_limits<std::int64_t>::max()};

  Clock::time_point start;
  const auto warmup = std::chrono::duration_cast<Clock::duration>(options.warmup);
  const auto window = std::chrono::duration_cast<Clock::duration>(options.duration);
  std::latch connected(clients);
  std::latch go(1);

  const std::vector<Endpoint> endpoints =
      options.endpoints.empty() ? std::vector<Endpoint>{options.endpoint} : options.endpoints;
  auto run_client = [&](int c) {
    ClientRecord& record = records[static_cast<std::size_t>(c)];
    record.endpoint = static_cast<std::size_t>(c) % endpoints.size();
    const Endpoint& endpoint = endpoints[record.endpoint];
    HttpClient client(endpoint.host, endpoint.port, options.timeout);
    std::string connect_error;
    if (!client.Connect(&connect_error)) record.first_error = connect_error;
    connected.count_down();
    go.wait();
    const auto end = start + warmup + window;
    const auto mark_exhausted = [&](Clock::time_point when) {
      std::int64_t at = Nanos(when - start);
      std::int64_t current = exhausted_at.load();
      while (at < current && !exhausted_at.compare_exchange_weak(current, at)) {
      }
      stop.store(true);
    };
    for (std::uint64_t sequence = 0;; ++sequence) {
      Clock::time_point send_time;
      if (open_loop) {
        const double index = static_cast<double>(sequence) * clients + c;
        send_time =
            start + std::chrono::duration_cast<Clock::duration>(Seconds(index / options.rate));
        if (send_time >= end) break;
        std::this_thread::sleep_until(send_time);
      } else {
        send_time = Clock::now();
        if (send_time >= end) break;
      }
      if (stop.load(std::memory_order_relaxed)) break;
      auto request = source(c, sequence);
      if (!request) {
        mark_exhausted(open_loop ? send_time : Clock::now());
        break;
      }
      HttpResponse response = client.Send(*request);
      const auto done = Clock::now();
      const auto latency = done - send_time;
      if (hook) hook(c, *request, response, latency);
      record.samples.push_back(
          Sample{Nanos(send_time - start), Nanos(done - start), Nanos(latency), response.status});
      if (response.ok()) {
        const auto second = static_cast<std::size_t>(Nanos(done - start) / 1'000'000'000);
        if (record.ok_per_second.size() <= second) record.ok_per_second.resize(second + 1, 0);
        ++record.ok_per_second[second];
      } else if (record.first_error.empty()) {
        record.first_error = response.status == 0
                                 ? response.error
                                 : std::to_string(response.status) + " " + response.body;
      }
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  for (int c = 0; c < clients; ++c) threads.emplace_back(run_client, c);
  connected.wait();
  start = Clock::now();
  go.count_down();
  for (auto& thread : threads) thread.join();

  LoadResult result;
  result.offered_rate = open_loop ? options.rate : 0;
  const std::int64_t warm_end_ns = Nanos(warmup);
  std::int64_t window_end_ns = Nanos(warmup + window);
  if (exhausted_at.load() < window_end_ns) {
    result.exhausted = true;
    window_end_ns = std::max(warm_end_ns, exhausted_at.load());
  }
  std::int64_t completed_in_window = 0;
  result.ok_per_endpoint.assign(endpoints.size(), 0);
  for (const auto& record : records) {
    for (const auto& sample : record.samples) {
      const bool ok = sample.status >= 200 && sample.status < 300;
      if (ok && sample.done_ns >= warm_end_ns && sample.done_ns < window_end_ns) {
        ++completed_in_window;
        ++result.ok_per_endpoint[record.endpoint];
      }
      if (sample.sent_ns < warm_end_ns) {
        ++result.warmup_requests;
        continue;
      }
      if (sample.sent_ns >= window_end_ns) continue;
      ++result.statuses[sample.status];
      if (ok) {
        ++result.ok;
        result.latency.Record(sample.latency_ns);
      } else {
        ++result.errors;
      }
    }
    if (result.ok_per_second.size() < record.ok_per_second.size()) {
      result.ok_per_second.resize(record.ok_per_second.size(), 0);
    }
    for (std::size_t i = 0; i < record.ok_per_second.size(); ++i) {
      result.ok_per_second[i] += record.ok_per_second[i];
    }
    if (result.first_error.empty()) result.first_error = record.first_error;
  }
  result.window_seconds = static_cast<double>(window_end_ns - warm_end_ns) / 1e9;
  result.throughput = result.window_seconds > 0
                          ? static_cast<double>(completed_in_window) / result.window_seconds
                          : 0;
  return result;
}

}  // namespace shopcqrs::bench
