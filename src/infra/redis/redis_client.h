#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;

namespace shopcqrs::infra::redis {

// Any Redis fault.
class RedisError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The connection could not be opened, was lost, or timed out. The connection is dropped; the
// next call reconnects. Whether the failed command ran on the server is unknown.
class RedisConnectionError : public RedisError {
 public:
  using RedisError::RedisError;
};

// The server answered with an error reply (e.g. "WRONGTYPE ...", a script's error_reply). The
// connection stays usable.
class RedisReplyError : public RedisError {
 public:
  using RedisError::RedisError;
};

// An owning copy of a RESP2 reply.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool IsNil() const { return type == Type::kNil; }
  bool IsError() const { return type == Type::kError; }
};

// A Lua script run with EVALSHA. The SHA1 is learnt from SCRIPT LOAD on first use and kept
// (it depends on the text only); a NOSCRIPT reply (the server restarted or flushed its
// script cache) loads the script again and retries once.
class RedisScript {
 public:
  explicit RedisScript(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }

 private:
  friend class RedisClient;
  std::string source_;
  mutable std::mutex mutex_;
  mutable std::string sha_;
};

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{5000};
};

// One hiredis connection (RAII). Connects lazily on the first command and again after a
// connection fault; a failed command is never retried on a new connection (the caller knows
// whether it is safe). Not thread-safe: use one per thread, or guard it.
class RedisClient {
 public:
  explicit RedisClient(RedisEndpoint endpoint);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command (binary-safe arguments). Throws RedisReplyError for an error reply,
  // RedisConnectionError for connection faults.
  RedisReply Command(const std::vector<std::string>& argv);
  RedisReply Command(std::initializer_list<std::string_view> argv);
  // Sends every command, then reads every reply (one round trip). Error replies are returned
  // in place (type kError), not thrown; connection faults throw.
  std::vector<RedisReply> Pipeline(const std::vector<std::vector<std::string>>& commands);
  // EVALSHA with script loading and the NOSCRIPT fallback. Error replies of the script throw
  // RedisReplyError.
  RedisReply Eval(const RedisScript& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args);

  // PING; throws on failure.
  void Ping();
  // Opens the connection now if it is not open.
  void Connect();
  void Disconnect();
  bool IsConnected() const { return context_ != nullptr; }
  // How many connections this client has opened (each reconnect counts).
  std::uint64_t Connections() const { return connections_; }
  const RedisEndpoint& endpoint() const { return endpoint_; }

 private:
  redisContext* Connected();
  [[noreturn]] void Fail(std::string_view what);
  RedisReply Read();
  std::string LoadScript(const RedisScript& script);

  RedisEndpoint endpoint_;
  redisContext* context_ = nullptr;
  std::uint64_t connections_ = 0;
};

}  // namespace shopcqrs::infra::redis
