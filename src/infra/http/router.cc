#include "infra/http/router.h"

#include <algorithm>
#include <stdexcept>

#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/pct_string_view.hpp>

#include "infra/http/problem.h"

namespace shopcqrs::infra::http {

namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Splits "/a/b/c" into {"a","b","c"}; "/" is one empty segment. Returns false when the path
// does not start with '/'.
bool SplitPath(std::string_view path, std::vector<std::string_view>& out) {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  while (true) {
    const std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return true;
}

// Literal segments beat parameters, compared from the left.
bool MoreSpecific(const std::vector<bool>& a, const std::vector<bool>& b) { return a > b; }

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// ---- Request / Response ----

void Request::SetTarget(std::string request_target) {
  target = std::move(request_target);
  const std::size_t question = target.find('?');
  path = target.substr(0, question);
  query.clear();
  malformed_query = false;
  if (question != std::string::npos) {
    auto parsed = ParseQuery(std::string_view(target).substr(question + 1));
    malformed_query = !parsed;
    if (parsed) query = std::move(*parsed);
  }
}

std::optional<std::string_view> Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

std::size_t Request::HeaderCount(std::string_view name) const {
  return static_cast<std::size_t>(std::count_if(headers.begin(), headers.end(), [&](const auto& h) {
    return EqualsIgnoreCase(h.first, name);
  }));
}

std::optional<std::string_view> Request::Query(std::string_view name) const {
  if (auto it = query.find(name); it != query.end()) return it->second;
  return std::nullopt;
}

std::string_view Request::PathParam(std::string_view name) const {
  if (auto it = path_params.find(name); it != path_params.end()) return it->second;
  return {};
}

void Response::SetHeader(std::string name, std::string value) {
  std::erase_if(headers, [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
  headers.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> Response::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

Response Response::Json(int status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

Response Response::Text(int status, std::string body, std::string content_type) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  response.content_type = std::move(content_type);
  return response;
}

// ---- query strings ----

std::optional<std::string> PercentDecode(std::string_view text, bool plus_as_space) {
  const auto encoded = boost::urls::make_pct_string_view(text);
  if (!encoded) return std::nullopt;
  boost::urls::encoding_opts options;
  options.space_as_plus = plus_as_space;
  return encoded->decode(options);
}

std::optional<ParamMap> ParseQuery(std::string_view query) {
  // Boost.URL 1.81's parse_query measures its argument with strlen (it passes s.data() where
  // a string_view is taken), so it is given a NUL-terminated copy: a view into a larger buffer
  // would be read past its end. The grammar refuses a NUL byte, so strlen finds the real end.
  const std::string terminated(query);
  const auto parsed = boost::urls::parse_query(terminated);
  if (!parsed) return std::nullopt;
  boost::urls::encoding_opts options;
  options.space_as_plus = true;
  ParamMap params;
  for (const auto& param : *parsed) {
    if (param.key.empty() && !param.has_value) continue;  // "a=1&&b=2"
    params.try_emplace(param.key.decode(options),
                       param.has_value ? param.value.decode(options) : std::string());
  }
  return params;
}

// ---- router ----

const Handler* Router::Route::Find(std::string_view method) const {
  for (const auto& [m, handler] : methods) {
    if (m == method) return &handler;
  }
  return nullptr;
}

const std::string* Router::Route::FindMethod(std::string_view method) const {
  for (const auto& [m, handler] : methods) {
    if (m == method) return &m;
  }
  return nullptr;
}

void Router::Add(std::string_view method, std::string_view pattern, Handler handler) {
  if (method.empty() || !handler) throw std::invalid_argument("route needs a method and handler");
  std::vector<std::string_view> parts;
  if (!SplitPath(pattern, parts)) {
    throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  std::vector<Segment> segments;
  for (std::string_view part : parts) {
    Segment segment;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      segment.is_param = true;
      segment.text = std::string(part.substr(1, part.size() - 2));
      if (segment.text.empty()) throw std::invalid_argument("empty parameter name in route");
    } else {
      if (part.find_first_of("{}") != std::string_view::npos) {
        throw std::invalid_argument("malformed route segment: " + std::string(part));
      }
      segment.text = std::string(part);
    }
    segments.push_back(std::move(segment));
  }
  // Patterns that differ only in parameter names are the same route.
  auto same_shape = [&](const Route& route) {
    if (route.segments.size() != segments.size()) return false;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const Segment& a = route.segments[i];
      const Segment& b = segments[i];
      if (a.is_param != b.is_param || (!a.is_param && a.text != b.text)) return false;
    }
    return true;
  };
  auto it = std::find_if(routes_.begin(), routes_.end(), same_shape);
  if (it == routes_.end()) {
    routes_.push_back(Route{std::string(pattern), std::move(segments), {}});
    it = std::prev(routes_.end());
  } else if (it->segments.size() == segments.size()) {
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (segments[i].is_param && it->segments[i].text != segments[i].text) {
        throw std::invalid_argument("route " + std::string(pattern) + " renames a parameter of " +
                                    it->pattern);
      }
    }
  }
  if (it->Find(method) != nullptr) {
    throw std::invalid_argument("duplicate route " + std::string(method) + " " +
                                std::string(pattern));
  }
  it->methods.emplace_back(std::string(method), std::move(handler));
}

std::vector<std::pair<std::string, std::string>> Router::Routes() const {
  std::vector<std::pair<std::string, std::string>> added;
  for (const Route& route : routes_) {
    for (const auto& [method, handler] : route.methods) added.emplace_back(method, route.pattern);
  }
  return added;
}

Response Router::Dispatch(Request& request) const {
  std::vector<std::string_view> raw;
  raw.reserve(8);
  if (!SplitPath(request.path, raw)) return ToResponse(NotFound());

  // Decode segments only when they need it.
  std::vector<std::string> decoded_storage;
  std::vector<std::string_view> segments;
  segments.reserve(raw.size());
  for (std::string_view part : raw) {
    if (part.find('%') == std::string_view::npos) {
      segments.push_back(part);
    } else {
      segments.push_back({});  // filled below, after storage stops moving
    }
  }
  decoded_storage.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i].find('%') != std::string_view::npos) {
      auto decoded = PercentDecode(raw[i], false);
      if (!decoded) return ToResponse(NotFound());  // not a valid path: no resource
      decoded_storage.push_back(std::move(*decoded));
      segments[i] = decoded_storage.back();
    }
  }

  const Route* best = nullptr;  // most specific match that has the method
  const Handler* best_handler = nullptr;
  std::vector<bool> best_shape;
  bool any_match = false;
  std::vector<std::string> allowed;
  const bool is_head = request.method == "HEAD";

  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool match = true;
    std::vector<bool> shape(segments.size());
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      const Segment& seg = route.segments[i];
      if (seg.is_param) {
        match = !segments[i].empty();
      } else {
        match = seg.text == segments[i];
        shape[i] = true;
      }
    }
    if (!match) continue;
    any_match = true;
    const Handler* handler = route.Find(request.method);
    if (handler == nullptr && is_head) handler = route.Find("GET");
    if (handler != nullptr) {
      if (best == nullptr || MoreSpecific(shape, best_shape)) {
        best = &route;
        best_handler = handler;
        best_shape = std::move(shape);
      }
    } else {
      for (const auto& [m, h] : route.methods) {
        if (std::find(allowed.begin(), allowed.end(), m) == allowed.end()) allowed.push_back(m);
      }
    }
  }

  if (best == nullptr) {
    if (!any_match) return ToResponse(NotFound());
    const bool has_get = std::find(allowed.begin(), allowed.end(), "GET") != allowed.end();
    const bool has_head = std::find(allowed.begin(), allowed.end(), "HEAD") != allowed.end();
    if (has_get && !has_head) allowed.emplace_back("HEAD");
    std::string allow;
    for (const std::string& m : allowed) {
      if (!allow.empty()) allow += ", ";
      allow += m;
    }
    return ToResponse(MethodNotAllowed(allow));
  }

  request.path_params.clear();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (best->segments[i].is_param) {
      request.path_params.insert_or_assign(best->segments[i].text, std::string(segments[i]));
    }
  }
  if (guard_) {
    const std::string_view method =
        best->FindMethod(request.method) != nullptr ? std::string_view(request.method) : "GET";
    if (auto answer = guard_(request, method, best->pattern)) return std::move(*answer);
  }
  if (request.malformed_query) {
    return ToResponse(ValidationFailed("the query string is not valid percent-encoding"));
  }
  return (*best_handler)(request);
}

}  // namespace shopcqrs::infra::http
