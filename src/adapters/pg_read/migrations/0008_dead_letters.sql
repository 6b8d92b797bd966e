-- Sequenced dead letters (docs/OPERATIONS.md): the events a read-database projection parked,
-- written in the same transaction as its checkpoint, and the skip list of the events an operator
-- set aside, which every later projection of the log into this database honours.
CREATE TABLE dead_letters (
  projection         text NOT NULL,
  position           bigint NOT NULL,
  xid                bigint NOT NULL,
  aggregate_type     text NOT NULL,
  aggregate_id       text NOT NULL,
  event_id           text NOT NULL,
  event_type         text NOT NULL,
  schema_version     integer NOT NULL,
  aggregate_version  bigint NOT NULL,
  occurred_at_ms     bigint NOT NULL,
  committed_at_ms    bigint NOT NULL,
  payload            text NOT NULL,
  error              text NOT NULL DEFAULT '',  -- why it was parked; '' behind the first one
  keys               text[] NOT NULL DEFAULT '{}',  -- the read rows it would change
  parked_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, position)
);
CREATE INDEX dead_letters_aggregate ON dead_letters (projection, aggregate_id, position);

CREATE TABLE projection_skips (
  projection         text NOT NULL,
  position           bigint NOT NULL,
  xid                bigint NOT NULL,
  event_id           text NOT NULL,
  aggregate_type     text NOT NULL,
  aggregate_id       text NOT NULL,
  aggregate_version  bigint NOT NULL,
  skipped_by         text NOT NULL,
  skipped_at         timestamptz NOT NULL,
  PRIMARY KEY (projection, position)
);

-- Raised by every transaction that parks or releases events: a process that follows the
-- projection (ProgressListener) reloads the parked events before it takes a bound past them.
ALTER TABLE projection_checkpoints ADD COLUMN dead_letter_generation bigint NOT NULL DEFAULT 0;

-- A skipped event counts as applied without its effect: its aggregate's version moves past it,
-- so the aggregate's later events apply. For each {"type", "id", "version"} of $2 (JSON array),
-- in projection $1's rows; an aggregate without a row (its creating event was skipped) has none
-- to move, and its later events stay unapplicable.
CREATE FUNCTION shopcqrs_pass_events(p_projection text, p_events text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  e record;
BEGIN
  FOR e IN SELECT * FROM json_to_recordset(p_events::json)
                    AS x(type text, id uuid, version bigint) LOOP
    IF p_projection = 'search' THEN
      IF e.type = 'Order' THEN
        UPDATE search_orders SET version = e.version WHERE id = e.id AND version = e.version - 1;
      ELSIF e.type = 'Customer' THEN
        UPDATE search_customers SET version = e.version WHERE id = e.id AND version = e.version - 1;
      END IF;
    ELSE
      IF e.type = 'Order' THEN
        UPDATE order_views SET version = e.version WHERE id = e.id AND version = e.version - 1;
      ELSIF e.type = 'Customer' THEN
        UPDATE customer_views SET version = e.version WHERE id = e.id AND version = e.version - 1;
      ELSIF e.type = 'Product' THEN
        UPDATE product_views SET version = e.version WHERE id = e.id AND version = e.version - 1;
      END IF;
    END IF;
  END LOOP;
END $$;
