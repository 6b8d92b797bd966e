#pragma once

// GET /openapi.json (API.md "Description and dashboard"): the OpenAPI 3.1 document of the routes
// the process serves, generated from the route table (route_table.h), so that its paths are the
// table's routes of the process's roles and cannot drift from what the router serves.
//
// What comes from where:
//   - the table: path, method, operationId (the route's name), tag (its role), the security
//     requirement (`security: []` on open routes, the bearer JWT scheme on the others) and the
//     answers every route of an access policy can give (401 unauthorized, 403 forbidden, the 404
//     of another customer's record), the path parameters of the pattern (`{id}`: a UUID; any
//     other text is 404 not_found);
//   - the route's description in openapi.cc (keyed by the route's name): summary, query
//     parameters, the request headers it reads (Idempotency-Key, If-Match, the consistency
//     token and its wait), its body, its answer and the problem codes of its own errors; the
//     answers implied by those (a body: 400 malformed_json, 413, 415; a consistency token:
//     503 read_model_behind; ...) are added by the generator;
//   - the schemas in openapi_schemas.cc (components.schemas).
//
// A route of the table without a description still appears (marked "x-shopcqrs-undescribed":
// true, with only its derived answers) and UndescribedRoutes() names it: OpenApiTest fails until
// it is described.

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "adapters/http/route_table.h"
#include "infra/http/router.h"

namespace shopcqrs::adapters::http {

// The document for a process serving `served` (the routes of ServingRole::kEvery always).
boost::json::object OpenApiDocument(ServedRoles served);

// The names of the table's routes that openapi.cc does not describe, and the names described
// there that the table lacks (both must be empty).
std::vector<std::string_view> UndescribedRoutes();
std::vector<std::string_view> DescriptionsWithoutRoute();

// The problem codes the document uses that have no meaning written in openapi.cc.
std::vector<std::string> CodesWithoutMeaning();

// components.schemas (openapi_schemas.cc).
boost::json::object OpenApiSchemas();

// GET /openapi.json: the document of `served`, rendered once. Call on every process.
void RegisterOpenApiRoute(infra::http::Router& router, ServedRoles served);

}  // namespace shopcqrs::adapters::http
