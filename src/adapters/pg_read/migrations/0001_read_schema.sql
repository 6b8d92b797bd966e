-- Read database: denormalized views maintained by the "read_pg" projection. Serves queries
-- only; every row can be rebuilt from the write database's outbox.
--
-- Version guards: each view row carries the version of the aggregate it was last projected
-- from. An event whose aggregate_version is not above it is a redelivery and is skipped. Rows
-- created before their aggregate's first event (an order placed for a customer or product
-- whose own creating event comes later in the log) are placeholders with version 0.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE order_views (
  id                 uuid PRIMARY KEY,
  customer_id        uuid NOT NULL,
  customer_name      text,  -- the customer's current details (null until it is projected)
  customer_email     text,
  status             text NOT NULL,
  lines              jsonb NOT NULL,  -- [{product_id, sku, product_name, quantity, ...}]
  item_count         bigint NOT NULL,  -- sum of line quantities
  total_cents        bigint NOT NULL,
  placed_at          timestamptz NOT NULL,
  paid_at            timestamptz,
  shipped_at         timestamptz,
  delivered_at       timestamptz,
  cancelled_at       timestamptz,
  payment_reference  text,
  tracking_number    text,
  cancel_reason      text,
  version            bigint NOT NULL,
  -- SKUs and product names of the lines, for search (fixed at placing).
  line_text          text NOT NULL DEFAULT ''
);
CREATE INDEX order_views_placed_idx ON order_views (placed_at DESC, id DESC);
CREATE INDEX order_views_customer_idx ON order_views (customer_id, placed_at DESC, id DESC);
CREATE INDEX order_views_status_idx ON order_views (status, placed_at DESC, id DESC);
CREATE INDEX order_views_search_idx ON order_views USING gin (
  (coalesce(customer_name, '') || ' ' || coalesce(customer_email, '') || ' ' || line_text
   || ' ' || coalesce(tracking_number, '')) gin_trgm_ops);

CREATE TABLE customer_views (
  id                    uuid PRIMARY KEY,
  name                  text,  -- null while a placeholder (version 0)
  email                 text,
  order_count           bigint NOT NULL DEFAULT 0,
  lifetime_value_cents  bigint NOT NULL DEFAULT 0,
  version               bigint NOT NULL DEFAULT 0
);

CREATE TABLE product_views (
  id             uuid PRIMARY KEY,
  sku            text,  -- null while a placeholder (version 0)
  name           text,
  price_cents    bigint NOT NULL DEFAULT 0,
  stock          bigint NOT NULL DEFAULT 0,
  units_sold     bigint NOT NULL DEFAULT 0,
  revenue_cents  bigint NOT NULL DEFAULT 0,
  version        bigint NOT NULL DEFAULT 0
);
CREATE INDEX product_views_top_idx ON product_views (units_sold DESC, id);

CREATE TABLE daily_sales (
  date           date PRIMARY KEY,
  orders_placed  bigint NOT NULL DEFAULT 0,
  orders_paid    bigint NOT NULL DEFAULT 0,
  revenue_cents  bigint NOT NULL DEFAULT 0
);

-- One row per projection: where it stands in the write database's outbox, stored in the same
-- transaction as the view changes it covers.
CREATE TABLE projection_checkpoints (
  name        text PRIMARY KEY,
  xid         bigint NOT NULL DEFAULT 0,
  position    bigint NOT NULL DEFAULT 0,
  bound       bigint NOT NULL DEFAULT 0,  -- every transaction with an xid below is applied
  events      bigint NOT NULL DEFAULT 0,  -- events applied so far
  updated_at  timestamptz NOT NULL DEFAULT now()
);
