// components.schemas of GET /openapi.json (openapi.h): JSON Schema 2020-12, as OpenAPI 3.1 uses it.
//
// The service's own answers are closed (`additionalProperties: false`, every member it always
// sends `required`), so that an answer that renames, drops or adds a field no longer validates
// (the black-box answers are validated against these: tests/blackbox/openapi_check.py). Request
// bodies stay open: unknown request fields are ignored (API.md "Conventions"). Fields that do not
// apply yet are `null`, so they are required and typed [T, "null"].
//
// The problem bodies (application/problem+json) are built per answer by openapi.cc, with the
// status and the codes of that answer.

#include <boost/json/parse.hpp>

#include "adapters/http/openapi.h"

namespace shopcqrs::adapters::http {

namespace {

constexpr std::string_view kSchemas = R"json({
  "Uuid": {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    "description": "A UUID in canonical lowercase text."
  },
  "Timestamp": {
    "type": "string",
    "format": "date-time",
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
    "description": "RFC 3339 UTC with millisecond precision, e.g. 2026-11-26T18:23:16.123Z."
  },
  "NullableTimestamp": {
    "type": ["string", "null"],
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
    "description": "A Timestamp, or null while it does not apply."
  },
  "Date": {
    "type": "string",
    "format": "date",
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "description": "A UTC day, YYYY-MM-DD."
  },
  "Version": {
    "type": "integer",
    "minimum": 1,
    "description": "The aggregate's version: 1 after create, +1 per change."
  },
  "Cents": {
    "type": "integer",
    "description": "Money in integer minor units (one currency per deployment)."
  },
  "Count": {"type": "integer", "minimum": 0},
  "ConsistencyToken": {
    "type": "string",
    "minLength": 1,
    "description": "Opaque, monotonic in commit order; send it to a query as X-Consistency-Token."
  },
  "OrderStatus": {
    "type": "string",
    "enum": ["placed", "paid", "shipped", "delivered", "cancelled"]
  },
  "ProblemType": {
    "type": "string",
    "pattern": "^urn:shopcqrs:problem:[a-z0-9_]+$",
    "description": "urn:shopcqrs:problem:<code>."
  },

  "RegisterCustomerRequest": {
    "type": "object",
    "required": ["name", "email"],
    "properties": {
      "name": {"type": "string", "minLength": 1, "maxLength": 200},
      "email": {"type": "string", "minLength": 1, "maxLength": 254, "pattern": "@"}
    }
  },
  "ChangeCustomerDetailsRequest": {
    "type": "object",
    "description": "At least one of name, email.",
    "properties": {
      "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
      "email": {"type": ["string", "null"], "minLength": 1, "maxLength": 254, "pattern": "@"}
    },
    "anyOf": [
      {"required": ["name"], "properties": {"name": {"type": "string"}}},
      {"required": ["email"], "properties": {"email": {"type": "string"}}}
    ]
  },
  "AddProductRequest": {
    "type": "object",
    "required": ["sku", "name", "price_cents", "stock"],
    "properties": {
      "sku": {"type": "string", "minLength": 1, "maxLength": 64},
      "name": {"type": "string", "minLength": 1, "maxLength": 200},
      "price_cents": {"type": "integer", "minimum": 0, "maximum": 1000000000},
      "stock": {"type": "integer", "minimum": 0, "maximum": 1000000000}
    }
  },
  "ChangeProductPriceRequest": {
    "type": "object",
    "required": ["price_cents"],
    "properties": {"price_cents": {"type": "integer", "minimum": 0, "maximum": 1000000000}}
  },
  "RestockProductRequest": {
    "type": "object",
    "required": ["quantity"],
    "properties": {"quantity": {"type": "integer", "minimum": 1, "maximum": 1000000000}}
  },
  "PlaceOrderRequest": {
    "type": "object",
    "required": ["customer_id", "lines"],
    "properties": {
      "customer_id": {"$ref": "#/components/schemas/Uuid"},
      "lines": {
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "description": "Repeated product ids are merged.",
        "items": {
          "type": "object",
          "required": ["product_id", "quantity"],
          "properties": {
            "product_id": {"$ref": "#/components/schemas/Uuid"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1000}
          }
        }
      }
    }
  },
  "PayOrderRequest": {
    "type": "object",
    "required": ["amount_cents", "payment_reference"],
    "properties": {
      "amount_cents": {"type": "integer", "description": "Must equal the order's total."},
      "payment_reference": {"type": "string", "minLength": 1, "maxLength": 100}
    }
  },
  "ShipOrderRequest": {
    "type": "object",
    "required": ["tracking_number"],
    "properties": {"tracking_number": {"type": "string", "minLength": 1, "maxLength": 100}}
  },
  "DeliverOrderRequest": {"type": "object", "description": "No body, or {}."},
  "CancelOrderRequest": {
    "type": "object",
    "properties": {"reason": {"type": ["string", "null"], "maxLength": 500}}
  },
  "MintTokenRequest": {
    "type": "object",
    "description": "Exactly one of customer_id and role.",
    "properties": {
      "customer_id": {"$ref": "#/components/schemas/Uuid"},
      "role": {"type": "string", "enum": ["admin", "payments"]},
      "ttl_s": {
        "type": "integer",
        "minimum": 1,
        "description": "At most auth.max_ttl_s; default 86400 (or auth.max_ttl_s if smaller)."
      }
    },
    "oneOf": [{"required": ["customer_id"]}, {"required": ["role"]}]
  },

  "CustomerRegistered": {
    "type": "object",
    "required": ["id", "name", "email", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "name": {"type": "string"},
      "email": {"type": "string"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"},
      "access_token": {
        "type": "string",
        "description": "A customer token for the new customer (24 h); never in a replayed answer."
      }
    }
  },
  "Changed": {
    "type": "object",
    "required": ["id", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"}
    }
  },
  "ProductAdded": {
    "type": "object",
    "required": ["id", "sku", "name", "price_cents", "stock", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "sku": {"type": "string"},
      "name": {"type": "string"},
      "price_cents": {"$ref": "#/components/schemas/Cents"},
      "stock": {"$ref": "#/components/schemas/Count"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"}
    }
  },
  "OrderPlaced": {
    "type": "object",
    "required": ["id", "status", "total_cents", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "status": {"const": "placed"},
      "total_cents": {"$ref": "#/components/schemas/Cents"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"}
    }
  },
  "OrderPaid": {
    "type": "object",
    "required": ["id", "status", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "status": {"const": "paid"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"}
    }
  },
  "OrderShipped": {
    "type": "object",
    "required": ["id", "status", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "status": {"const": "shipped"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"}
    }
  },
  "OrderDelivered": {
    "type": "object",
    "required": ["id", "status", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "status": {"const": "delivered"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"}
    }
  },
  "OrderCancelled": {
    "type": "object",
    "required": ["id", "status", "version", "consistency_token"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "status": {"const": "cancelled"},
      "version": {"$ref": "#/components/schemas/Version"},
      "consistency_token": {"$ref": "#/components/schemas/ConsistencyToken"}
    }
  },
  "TokenMinted": {
    "type": "object",
    "required": ["access_token", "expires_at"],
    "additionalProperties": false,
    "properties": {
      "access_token": {"type": "string", "minLength": 1},
      "expires_at": {"$ref": "#/components/schemas/Timestamp"}
    }
  },

  "OrderLine": {
    "type": "object",
    "required": ["product_id", "sku", "product_name", "quantity", "unit_price_cents",
                 "line_total_cents"],
    "additionalProperties": false,
    "properties": {
      "product_id": {"$ref": "#/components/schemas/Uuid"},
      "sku": {"type": "string", "description": "As captured when the order was placed."},
      "product_name": {"type": "string", "description": "As captured when the order was placed."},
      "quantity": {"type": "integer", "minimum": 1},
      "unit_price_cents": {"$ref": "#/components/schemas/Cents"},
      "line_total_cents": {"$ref": "#/components/schemas/Cents"}
    }
  },
  "OrderSummary": {
    "type": "object",
    "description": "An order without its lines. customer_name and customer_email are the customer's current details.",
    "required": ["id", "customer_id", "customer_name", "customer_email", "status", "item_count",
                 "total_cents", "placed_at", "paid_at", "shipped_at", "delivered_at",
                 "cancelled_at", "payment_reference", "tracking_number", "cancel_reason",
                 "version"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "customer_id": {"$ref": "#/components/schemas/Uuid"},
      "customer_name": {"type": ["string", "null"]},
      "customer_email": {"type": ["string", "null"]},
      "status": {"$ref": "#/components/schemas/OrderStatus"},
      "item_count": {"type": "integer", "minimum": 0, "description": "The sum of the line quantities."},
      "total_cents": {"$ref": "#/components/schemas/Cents"},
      "placed_at": {"$ref": "#/components/schemas/Timestamp"},
      "paid_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "shipped_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "delivered_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "cancelled_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "payment_reference": {"type": ["string", "null"]},
      "tracking_number": {"type": ["string", "null"]},
      "cancel_reason": {"type": ["string", "null"]},
      "version": {"$ref": "#/components/schemas/Version"}
    }
  },
  "OrderView": {
    "type": "object",
    "description": "An order summary with its lines.",
    "required": ["id", "customer_id", "customer_name", "customer_email", "status", "lines",
                 "item_count", "total_cents", "placed_at", "paid_at", "shipped_at",
                 "delivered_at", "cancelled_at", "payment_reference", "tracking_number",
                 "cancel_reason", "version"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "customer_id": {"$ref": "#/components/schemas/Uuid"},
      "customer_name": {"type": ["string", "null"]},
      "customer_email": {"type": ["string", "null"]},
      "status": {"$ref": "#/components/schemas/OrderStatus"},
      "lines": {"type": "array", "items": {"$ref": "#/components/schemas/OrderLine"}},
      "item_count": {"type": "integer", "minimum": 0},
      "total_cents": {"$ref": "#/components/schemas/Cents"},
      "placed_at": {"$ref": "#/components/schemas/Timestamp"},
      "paid_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "shipped_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "delivered_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "cancelled_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "payment_reference": {"type": ["string", "null"]},
      "tracking_number": {"type": ["string", "null"]},
      "cancel_reason": {"type": ["string", "null"]},
      "version": {"$ref": "#/components/schemas/Version"}
    }
  },
  "OrderPage": {
    "type": "object",
    "required": ["items", "next_cursor"],
    "additionalProperties": false,
    "properties": {
      "items": {"type": "array", "items": {"$ref": "#/components/schemas/OrderSummary"}},
      "next_cursor": {
        "type": ["string", "null"],
        "description": "Opaque; pass as `cursor` for the next page. null on the last page."
      }
    }
  },
  "CustomerView": {
    "type": "object",
    "required": ["id", "name", "email", "order_count", "lifetime_value_cents", "version"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "name": {"type": "string"},
      "email": {"type": "string"},
      "order_count": {"$ref": "#/components/schemas/Count"},
      "lifetime_value_cents": {"$ref": "#/components/schemas/Cents"},
      "version": {"$ref": "#/components/schemas/Version"}
    }
  },
  "ProductView": {
    "type": "object",
    "required": ["id", "sku", "name", "price_cents", "stock", "units_sold", "revenue_cents",
                 "version"],
    "additionalProperties": false,
    "properties": {
      "id": {"$ref": "#/components/schemas/Uuid"},
      "sku": {"type": "string"},
      "name": {"type": "string"},
      "price_cents": {"$ref": "#/components/schemas/Cents"},
      "stock": {"$ref": "#/components/schemas/Count"},
      "units_sold": {"$ref": "#/components/schemas/Count"},
      "revenue_cents": {"type": ["integer", "null"], "description": "null for customers."},
      "version": {"$ref": "#/components/schemas/Version"}
    }
  },
  "TopProducts": {
    "type": "object",
    "required": ["items"],
    "additionalProperties": false,
    "properties": {
      "items": {
        "type": "array",
        "description": "Most units sold first.",
        "items": {
          "type": "object",
          "required": ["product_id", "sku", "name", "units_sold", "revenue_cents"],
          "additionalProperties": false,
          "properties": {
            "product_id": {"$ref": "#/components/schemas/Uuid"},
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "units_sold": {"$ref": "#/components/schemas/Count"},
            "revenue_cents": {"type": ["integer", "null"], "description": "null for customers."}
          }
        }
      }
    }
  },
  "DailySales": {
    "type": "object",
    "required": ["items"],
    "additionalProperties": false,
    "properties": {
      "items": {
        "type": "array",
        "description": "One item per UTC day of the range.",
        "items": {
          "type": "object",
          "required": ["date", "orders_placed", "orders_paid", "revenue_cents"],
          "additionalProperties": false,
          "properties": {
            "date": {"$ref": "#/components/schemas/Date"},
            "orders_placed": {"$ref": "#/components/schemas/Count"},
            "orders_paid": {"$ref": "#/components/schemas/Count"},
            "revenue_cents": {
              "$ref": "#/components/schemas/Cents",
              "description": "Payments received that day minus refunds issued that day."
            }
          }
        }
      }
    }
  },

  "Projections": {
    "type": "object",
    "required": ["items"],
    "additionalProperties": false,
    "properties": {
      "items": {
        "type": "array",
        "description": "The projections this process runs, and its relay (name relay).",
        "items": {
          "type": "object",
          "required": ["name", "store", "status", "position", "events_behind", "lag_ms",
                       "dead_letters", "last_error"],
          "additionalProperties": false,
          "properties": {
            "name": {"type": "string"},
            "store": {"type": "string"},
            "status": {"type": "string"},
            "position": {"type": "integer"},
            "events_behind": {"type": "integer", "minimum": -1,
                              "description": "-1 when it could not be counted."},
            "lag_ms": {"type": "integer"},
            "dead_letters": {"$ref": "#/components/schemas/Count"},
            "last_error": {"type": ["string", "null"]}
          }
        }
      }
    }
  },
  "DeadLetters": {
    "type": "object",
    "required": ["items"],
    "additionalProperties": false,
    "properties": {
      "items": {
        "type": "array",
        "description": "Parked aggregates, in the order of their first parked event.",
        "items": {
          "type": "object",
          "required": ["projection", "aggregate_type", "aggregate_id", "first_position",
                       "events", "error", "parked_at"],
          "additionalProperties": false,
          "properties": {
            "projection": {"type": "string"},
            "aggregate_type": {"type": "string", "enum": ["Order", "Customer", "Product"]},
            "aggregate_id": {"$ref": "#/components/schemas/Uuid"},
            "first_position": {"type": "integer", "minimum": 1,
                               "description": "The outbox position of the first parked event."},
            "events": {"type": "integer", "minimum": 1,
                       "description": "Parked events of the aggregate (the first and all later ones)."},
            "error": {"type": "string", "description": "Why the first one was parked."},
            "parked_at": {"$ref": "#/components/schemas/Timestamp"}
          }
        }
      }
    }
  },
  "Resolved": {
    "type": "object",
    "required": ["projection", "aggregate_id", "resolved", "applied", "skipped"],
    "additionalProperties": false,
    "properties": {
      "projection": {"type": "string"},
      "aggregate_id": {"$ref": "#/components/schemas/Uuid"},
      "resolved": {"const": true},
      "applied": {"$ref": "#/components/schemas/Count"},
      "skipped": {"type": "integer", "enum": [0, 1]}
    }
  },
  "Health": {
    "type": "object",
    "required": ["status"],
    "additionalProperties": false,
    "properties": {"status": {"const": "ok"}}
  },
  "Checks": {
    "type": "object",
    "description": "One member per readiness check of the process's roles: its stores, the broker, the relay, and projector_<name> per projection it runs.",
    "propertyNames": {
      "pattern": "^(write_db|read_db|redis|write_db_queries|nats|relay|projector_(read_pg|search|redis))$"
    },
    "additionalProperties": {"type": "string", "enum": ["up", "down"]}
  },
  "Ready": {
    "type": "object",
    "required": ["status", "checks", "auth"],
    "additionalProperties": false,
    "properties": {
      "status": {"const": "ready"},
      "checks": {"$ref": "#/components/schemas/Checks"},
      "auth": {"type": "string", "enum": ["on", "off"]}
    }
  },
  "Metrics": {
    "type": "string",
    "description": "Prometheus text exposition format 0.0.4."
  },
  "OpenApi": {
    "type": "object",
    "description": "This document. Below its top level it follows the OpenAPI 3.1 specification, which this schema does not repeat.",
    "x-shopcqrs-strict": "top-level",
    "required": ["openapi", "info", "paths", "components"],
    "additionalProperties": false,
    "properties": {
      "openapi": {"const": "3.1.0"},
      "jsonSchemaDialect": {"type": "string"},
      "info": {
        "type": "object",
        "required": ["title", "version"],
        "additionalProperties": false,
        "properties": {
          "title": {"type": "string"},
          "version": {"type": "string"},
          "description": {"type": "string"}
        }
      },
      "tags": {"type": "array"},
      "security": {"type": "array"},
      "paths": {
        "type": "object",
        "propertyNames": {"pattern": "^/"},
        "additionalProperties": {"type": "object", "minProperties": 1}
      },
      "components": {
        "type": "object",
        "required": ["schemas", "securitySchemes"]
      }
    }
  }
})json";

}  // namespace

boost::json::object OpenApiSchemas() { return boost::json::parse(kSchemas).as_object(); }

}  // namespace shopcqrs::adapters::http
