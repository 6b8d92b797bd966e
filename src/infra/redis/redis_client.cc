#include "infra/redis/redis_client.h"

#include <sys/time.h>

#include <hiredis/hiredis.h>

#include <fmt/format.h>

namespace shopcqrs::infra::redis {

namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

RedisReply Copy(const redisReply* reply) {
  RedisReply out;
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = reply->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(reply->elements);
      for (std::size_t i = 0; i < reply->elements; ++i) {
        out.elements.push_back(Copy(reply->element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(void* reply) const { freeReplyObject(reply); }
};

template <class Strings>
void Append(redisContext* context, const Strings& argv) {
  std::vector<const char*> data;
  std::vector<std::size_t> lengths;
  data.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const auto& arg : argv) {
    data.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  // Only fails on out-of-memory; the error is then in context->err.
  redisAppendCommandArgv(context, static_cast<int>(data.size()), data.data(), lengths.data());
}

}  // namespace

RedisClient::RedisClient(RedisEndpoint endpoint) : endpoint_(std::move(endpoint)) {}

RedisClient::~RedisClient() { Disconnect(); }

void RedisClient::Disconnect() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

void RedisClient::Fail(std::string_view what) {
  std::string detail = context_ != nullptr && context_->err ? context_->errstr : "unknown error";
  Disconnect();
  throw RedisConnectionError(
      fmt::format("redis {}:{}: {}: {}", endpoint_.host, endpoint_.port, what, detail));
}

void RedisClient::Connect() { Connected(); }

redisContext* RedisClient::Connected() {
  if (context_ != nullptr) return context_;
  redisContext* context = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port,
                                                  ToTimeval(endpoint_.connect_timeout));
  if (context == nullptr || context->err) {
    std::string detail = context != nullptr ? context->errstr : "out of memory";
    if (context != nullptr) redisFree(context);
    throw RedisConnectionError(
        fmt::format("cannot connect to redis {}:{}: {}", endpoint_.host, endpoint_.port, detail));
  }
  if (redisSetTimeout(context, ToTimeval(endpoint_.command_timeout)) != REDIS_OK) {
    redisFree(context);
    throw RedisConnectionError(
        fmt::format("redis {}:{}: cannot set the command timeout", endpoint_.host, endpoint_.port));
  }
  redisEnableKeepAlive(context);
  context_ = context;
  ++connections_;
  return context_;
}

RedisReply RedisClient::Read() {
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) Fail("connection lost");
  std::unique_ptr<void, ReplyDeleter> reply(raw);
  return Copy(static_cast<redisReply*>(raw));
}

RedisReply RedisClient::Command(const std::vector<std::string>& argv) {
  auto* context = Connected();
  Append(context, argv);
  if (context->err) Fail("cannot send a command");
  RedisReply reply = Read();
  if (reply.IsError()) throw RedisReplyError(reply.str);
  return reply;
}

RedisReply RedisClient::Command(std::initializer_list<std::string_view> argv) {
  return Command(std::vector<std::string>(argv.begin(), argv.end()));
}

std::vector<RedisReply> RedisClient::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  auto* context = Connected();
  for (const auto& argv : commands) Append(context, argv);
  if (context->err) Fail("cannot send a pipeline");
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) replies.push_back(Read());
  return replies;
}

void RedisClient::Ping() {
  auto reply = Command({"PING"});
  if (reply.type != RedisReply::Type::kStatus || reply.str != "PONG") {
    throw RedisReplyError("unexpected PING reply: " + reply.str);
  }
}

std::string RedisClient::LoadScript(const RedisScript& script) {
  auto reply = Command({"SCRIPT", "LOAD", script.source_});
  std::lock_guard lock(script.mutex_);
  script.sha_ = reply.str;
  return reply.str;
}

RedisReply RedisClient::Eval(const RedisScript& script, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  std::string sha;
  {
    std::lock_guard lock(script.mutex_);
    sha = script.sha_;
  }
  if (sha.empty()) sha = LoadScript(script);
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha);
  argv.push_back(std::to_string(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  try {
    return Command(argv);
  } catch (const RedisReplyError& error) {
    if (!std::string_view(error.what()).starts_with("NOSCRIPT")) throw;
  }
  argv[1] = LoadScript(script);
  return Command(argv);
}

}  // namespace shopcqrs::infra::redis
