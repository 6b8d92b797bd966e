#pragma once

// Transport-neutral request/response types and the route table of the HTTP server. Nothing
// here depends on Boost.Beast: handlers are plain functions from Request to Response.

#include <any>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shopcqrs::infra::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;
using ParamMap = std::map<std::string, std::string, std::less<>>;

// ASCII case-insensitive comparison (header names, media types).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

struct Request {
  std::string method;            // "GET", "POST", ... as sent
  std::string target;            // as sent, e.g. "/v1/orders?limit=5"
  std::string path;              // the target without its query, still percent-encoded
  ParamMap query;                // decoded query parameters; the first occurrence of a name wins
  bool malformed_query = false;  // the query is not valid percent-encoding: 400, no route runs
  HeaderList headers;            // as received (names in the client's case)
  std::string body;
  ParamMap path_params;        // decoded values of `{name}` segments, filled by the Router
  std::string request_id;      // the X-Request-Id the response will carry
  std::string client_address;  // the peer's IP address as text ("" when unknown)
  // Who is asking, as the router's guard decided (the adapters put their principal here);
  // empty when no guard ran.
  std::any principal;

  // Sets target, path and query from a request target.
  void SetTarget(std::string request_target);

  // First header of that name (case-insensitive).
  std::optional<std::string_view> Header(std::string_view name) const;
  std::size_t HeaderCount(std::string_view name) const;
  std::optional<std::string_view> Query(std::string_view name) const;
  // "" when the route has no such parameter.
  std::string_view PathParam(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";  // not sent when empty
  HeaderList headers;                             // extra headers

  // Replaces any header of the same name (case-insensitive).
  void SetHeader(std::string name, std::string value);
  std::optional<std::string_view> Header(std::string_view name) const;

  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body, std::string content_type);
};

using Handler = std::function<Response(const Request&)>;
// Runs before a route's handler, once the route is known (`method` and `pattern` as added; a
// HEAD served by GET says "GET"): an answer stops the request there (e.g. 401), nullopt lets
// the handler run. It sees the path parameters and may fill `request.principal`.
using Guard = std::function<std::optional<Response>(Request& request, std::string_view method,
                                                    std::string_view pattern)>;

// Percent-decodes `text` (Boost.URL); with `plus_as_space` a '+' becomes ' ' (query strings).
// nullopt when `text` is not valid percent-encoding (a '%' without two hex digits).
std::optional<std::string> PercentDecode(std::string_view text, bool plus_as_space);
// Parses "a=1&b=x%20y&c" (without the '?') with Boost.URL; a name without '=' has the value "".
// nullopt when the query is not valid percent-encoding.
std::optional<ParamMap> ParseQuery(std::string_view query);

// Routes by method and path pattern. Patterns are '/'-separated segments; a segment written
// `{name}` matches any one non-empty segment and is handed to the handler (percent-decoded) as
// a path parameter: handlers validate it. Literal segments take precedence over parameters
// ("/v1/products/top" beats "/v1/products/{id}").
//
// Unknown path: 404 not_found. Known path, other method: 405 method_not_allowed with an Allow
// header. HEAD falls back to the GET handler (the server sends no body).
class Router {
 public:
  // Throws std::invalid_argument for a malformed pattern or a duplicate (method, pattern).
  void Add(std::string_view method, std::string_view pattern, Handler handler);

  // The guard every matched route passes first (after the path parameters are decoded, before
  // the query string is checked). One per
  // router; replaces any earlier one.
  void SetGuard(Guard guard) { guard_ = std::move(guard); }

  // Matches `request.path`, fills `request.path_params` and runs the handler. Exceptions from
  // the handler propagate (the server turns them into 500 internal_error).
  Response Dispatch(Request& request) const;

  // Every (method, pattern) added, in the order added (HEAD's fallback to GET not listed).
  std::vector<std::pair<std::string, std::string>> Routes() const;

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool is_param = false;
  };
  struct Route {
    std::string pattern;
    std::vector<Segment> segments;
    std::vector<std::pair<std::string, Handler>> methods;
    const Handler* Find(std::string_view method) const;
    const std::string* FindMethod(std::string_view method) const;
  };

  std::vector<Route> routes_;
  Guard guard_;
};

}  // namespace shopcqrs::infra::http
