-- Order search becomes a projection of its own ("search", SearchProjection), with its own
-- checkpoint row in projection_checkpoints and its own denormalized state, so that it can run,
-- fall behind and be rebuilt independently of "read_pg" (which no longer maintains search).
--
-- search_customers: each customer's current name and e-mail, at the version of its last event
-- (customers the search projection has not seen registered have no row).
-- search_orders: per order, what its document is made of and the document itself:
--   document = coalesce(customer name, '') || ' ' || coalesce(customer email, '') || ' ' ||
--              line_text || ' ' || coalesce(tracking_number, '')
-- version is the order's aggregate version up to which the row reflects every event; only the
-- events that change a document (OrderPlaced, OrderShipped) write the row, so payments,
-- deliveries and cancellations cost the search projection nothing.

CREATE TABLE search_customers (
  id       uuid PRIMARY KEY,
  name     text NOT NULL,
  email    text NOT NULL,
  version  bigint NOT NULL
);

CREATE TABLE search_orders (
  id               uuid PRIMARY KEY,
  customer_id      uuid NOT NULL,
  line_text        text NOT NULL,  -- SKUs and product names of the lines (fixed at placing)
  tracking_number  text,
  version          bigint NOT NULL,
  document         text NOT NULL
);

-- An installation that already has data starts the search projection where read_pg stands,
-- from read_pg's state, instead of re-projecting the whole event log. Taking read_pg's
-- checkpoint row lock first waits for a batch in flight and holds off the next, so the copy
-- is exactly the state at that checkpoint. (Without a read_pg row there is nothing to copy:
-- the search projection starts from zero.)
SELECT 1 FROM projection_checkpoints WHERE name = 'read_pg' FOR UPDATE;

INSERT INTO projection_checkpoints (name, xid, position, bound, events)
SELECT 'search', xid, position, bound, events FROM projection_checkpoints WHERE name = 'read_pg'
ON CONFLICT (name) DO NOTHING;

INSERT INTO search_customers (id, name, email, version)
SELECT id, name, email, version FROM customer_views WHERE version > 0;

INSERT INTO search_orders (id, customer_id, line_text, tracking_number, version, document)
SELECT o.id, o.customer_id, o.line_text, o.tracking_number, o.version,
       coalesce(c.name, '') || ' ' || coalesce(c.email, '') || ' ' || o.line_text || ' '
       || coalesce(o.tracking_number, '')
FROM order_views o LEFT JOIN search_customers c ON c.id = o.customer_id;

-- Indexes after the bulk copy (much faster than maintaining them row by row).
CREATE INDEX search_orders_customer_idx ON search_orders (customer_id);
CREATE INDEX search_orders_document_idx ON search_orders USING gin (document gin_trgm_ops);

-- Replaced by search_orders (maintained by read_pg until now).
DROP TABLE order_search;
