-- Order search gets its own table. The trigram index is by far the most expensive index of
-- the read database to maintain (about a hundred GIN entries per row version, measured at
-- ~80% of the cost of writing an order view). On order_views every projected event creates
-- a new row version (its status index changes), so every payment, shipment or cancellation
-- also re-inserted the whole trigram set. Here a row gets a new version only when its search
-- document really changes: placing, shipping (tracking number), a customer's new details.
--
-- document = coalesce(customer_name, '') || ' ' || coalesce(customer_email, '') || ' ' ||
--            line_text || ' ' || coalesce(tracking_number, '') of the order view, kept equal
-- to it by the projection in the same transaction as the order view.

CREATE TABLE order_search (
  id        uuid PRIMARY KEY,  -- an order_views id (same transaction, never deleted)
  document  text NOT NULL
);
CREATE INDEX order_search_document_idx ON order_search USING gin (document gin_trgm_ops);

INSERT INTO order_search (id, document)
SELECT id, coalesce(customer_name, '') || ' ' || coalesce(customer_email, '') || ' ' || line_text
           || ' ' || coalesce(tracking_number, '')
FROM order_views;

DROP INDEX order_views_search_idx;
