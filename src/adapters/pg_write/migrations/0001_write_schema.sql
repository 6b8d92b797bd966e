-- Write database: normalized state of the aggregates, plus the outbox (the retained event log)
-- and the idempotency keys. Serves commands only.

CREATE TABLE customers (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  email       text NOT NULL,
  version     bigint NOT NULL CHECK (version >= 1),
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
-- E-mail addresses are unique regardless of case.
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email));

CREATE TABLE products (
  id           uuid PRIMARY KEY,
  sku          text NOT NULL,
  name         text NOT NULL,
  price_cents  bigint NOT NULL CHECK (price_cents >= 0),
  stock        bigint NOT NULL CONSTRAINT products_stock_not_negative CHECK (stock >= 0),
  version      bigint NOT NULL CHECK (version >= 1),
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL,
  CONSTRAINT products_sku_key UNIQUE (sku)
);

CREATE TABLE orders (
  id             uuid PRIMARY KEY,
  customer_id    uuid NOT NULL REFERENCES customers (id),
  status         text NOT NULL
                 CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
  total_cents    bigint NOT NULL CHECK (total_cents >= 0),
  version        bigint NOT NULL CHECK (version >= 1),
  placed_at      timestamptz NOT NULL,
  cancelled_at   timestamptz,
  cancel_reason  text,
  updated_at     timestamptz NOT NULL
);
CREATE INDEX orders_customer_idx ON orders (customer_id);

CREATE TABLE order_lines (
  order_id          uuid NOT NULL REFERENCES orders (id),
  line_no           integer NOT NULL,
  product_id        uuid NOT NULL REFERENCES products (id),
  sku               text NOT NULL,
  product_name      text NOT NULL,
  quantity          bigint NOT NULL CHECK (quantity > 0),
  unit_price_cents  bigint NOT NULL CHECK (unit_price_cents >= 0),
  PRIMARY KEY (order_id, line_no)
);

CREATE TABLE payments (
  order_id           uuid PRIMARY KEY REFERENCES orders (id),
  amount_cents       bigint NOT NULL CHECK (amount_cents >= 0),
  payment_reference  text NOT NULL,
  paid_at            timestamptz NOT NULL,
  refunded_cents     bigint,
  refunded_at        timestamptz
);

CREATE TABLE shipments (
  order_id         uuid PRIMARY KEY REFERENCES orders (id),
  tracking_number  text NOT NULL,
  shipped_at       timestamptz NOT NULL,
  delivered_at     timestamptz
);

-- The outbox is the event log, kept forever so any read model can be rebuilt from zero.
--
-- Gap-free reading: `position` alone is NOT a safe cursor, because transactions commit out of
-- position order (a reader that trusts a bigserial skips rows committed late). Every row
-- records the xid8 of the transaction that wrote it. A reader asks for rows whose xid is below
-- pg_snapshot_xmin(pg_current_snapshot()) -- every transaction below that bound has finished, so
-- that set can no longer grow -- and walks them in (xid, position) order, checkpointing on the
-- pair. We chose this over logical decoding for the first reader because it needs no
-- replication slot or wal_level change and works through any connection pooler; its price
-- (the oldest open xid on the server holds every reader back) is exposed as a metric.
-- Per-aggregate order holds because every command that changes an existing aggregate takes a
-- transaction-scoped advisory lock on it before anything that assigns an xid, so a later
-- change of the same aggregate always has a larger xid.
CREATE TABLE outbox (
  position           bigserial PRIMARY KEY,
  xid                xid8 NOT NULL DEFAULT pg_current_xact_id(),
  event_id           uuid NOT NULL UNIQUE,
  event_type         text NOT NULL,
  schema_version     integer NOT NULL,
  aggregate_type     text NOT NULL,
  aggregate_id       uuid NOT NULL,
  aggregate_version  bigint NOT NULL,
  occurred_at        timestamptz NOT NULL,
  payload            json NOT NULL,
  -- At most one event per aggregate version: a lost update can never commit.
  CONSTRAINT outbox_aggregate_version_key UNIQUE (aggregate_id, aggregate_version)
);
CREATE INDEX outbox_xid_position_idx ON outbox (xid, position);

CREATE TABLE idempotency_keys (
  key           text PRIMARY KEY,
  fingerprint   text NOT NULL,
  result        json NOT NULL,
  -- The commit bound behind the consistency token, recorded right after the commit.
  commit_bound  bigint,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
