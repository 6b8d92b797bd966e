#include "apps/shopcqrs/admin_cli.h"

#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "apps/shopcqrs/auth.h"
#include "infra/http/client.h"

namespace shopcqrs::apps {

namespace {

struct Target {
  std::string host;
  int port = 0;
};

Target TargetOf(const Config& config, const std::optional<std::string>& url) {
  std::string address = url ? *url : config.listen;
  if (address.starts_with("http://")) address.erase(0, 7);
  while (!address.empty() && address.back() == '/') address.pop_back();
  auto parsed = ParseListenAddress(address);
  if (!parsed) throw ConfigError("--url: " + parsed.error());
  if (parsed->port == 0) throw ConfigError("--url: needs a port");
  return {parsed->host == "0.0.0.0" ? "127.0.0.1" : parsed->host, parsed->port};
}

std::string Encoded(const std::string& segment) {
  return boost::urls::encode(segment, boost::urls::unreserved_chars);
}

// The problem's detail, or the body.
std::string DetailOf(const infra::http::ClientResponse& response) {
  boost::system::error_code ec;
  auto parsed = boost::json::parse(response.body, ec);
  if (!ec && parsed.is_object()) {
    if (auto* detail = parsed.as_object().if_contains("detail"); detail && detail->is_string()) {
      return std::string(detail->as_string());
    }
  }
  return response.body;
}

}  // namespace

int DeadLetters(const Config& config, const DeadLetterCommand& command) {
  const auto target = TargetOf(config, command.url);
  std::vector<std::pair<std::string, std::string>> headers;
  if (config.auth.mode != "off") {
    headers.emplace_back("Authorization", "Bearer " + MintToken(config, std::nullopt, "admin",
                                                                std::chrono::seconds(300)));
  }
  if (command.action == "list") {
    std::string path = "/v1/admin/dead-letters";
    if (command.projection) path += "?projection=" + Encoded(*command.projection);
    const auto response = infra::http::Fetch(target.host, target.port, "GET", path, headers);
    if (response.status == 404) {
      std::cerr << "shopcqrs: " << DetailOf(response) << std::endl;
      return kExitNotFound;
    }
    if (response.status != 200) {
      std::cerr << fmt::format("shopcqrs: {} answered {}: {}", path, response.status,
                               DetailOf(response))
                << std::endl;
      return kExitFailed;
    }
    const auto items = boost::json::parse(response.body).as_object().at("items").as_array();
    std::cout << fmt::format("{:<10} {:<9} {:<36} {:>14} {:>6}  {:<24}  {}\n", "projection", "type",
                             "aggregate_id", "first_position", "events", "parked_at", "error");
    for (const auto& value : items) {
      const auto& item = value.as_object();
      std::cout << fmt::format(
          "{:<10} {:<9} {:<36} {:>14} {:>6}  {:<24}  {}\n",
          item.at("projection").as_string().c_str(), item.at("aggregate_type").as_string().c_str(),
          item.at("aggregate_id").as_string().c_str(), item.at("first_position").as_int64(),
          item.at("events").as_int64(), item.at("parked_at").as_string().c_str(),
          item.at("error").as_string().c_str());
    }
    return items.empty() ? kExitOk : kExitParked;
  }
  if (command.action != "retry" && command.action != "skip") {
    throw ConfigError("dead-letters: the action is list, retry or skip");
  }
  if (!command.projection || !command.aggregate_id) {
    throw ConfigError("dead-letters " + command.action + ": needs PROJECTION and AGGREGATE_ID");
  }
  const std::string path = "/v1/admin/dead-letters/" + Encoded(*command.projection) + "/" +
                           Encoded(*command.aggregate_id) + "/" + command.action;
  const auto response = infra::http::Fetch(target.host, target.port, "POST", path, headers);
  switch (response.status) {
    case 200: {
      const auto body = boost::json::parse(response.body).as_object();
      std::cout << fmt::format("{} {} in {}: {} parked events applied, {} skipped\n",
                               command.action == "skip" ? "skipped" : "retried",
                               *command.aggregate_id, *command.projection,
                               body.at("applied").as_int64(), body.at("skipped").as_int64());
      return kExitOk;
    }
    case 404:
      std::cerr << "shopcqrs: " << DetailOf(response) << std::endl;
      return kExitNotFound;
    case 409:
      std::cerr << "shopcqrs: " << DetailOf(response) << std::endl;
      return kExitStillFailing;
    default:
      std::cerr << fmt::format("shopcqrs: {} answered {}: {}", path, response.status,
                               DetailOf(response))
                << std::endl;
      return kExitFailed;
  }
}

}  // namespace shopcqrs::apps
