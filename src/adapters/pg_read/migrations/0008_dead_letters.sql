-- Sequenced dead letters (docs/API.md "Sequenced dead letters"): the events a read-database
-- projection parked, written in the same transaction as its checkpoint, and the skip list of the
-- events an operator set aside, which every later projection of the log into this database
-- honours (a skipped version counts as applied without its effect: the version guards let the
-- aggregate's later events through).
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
