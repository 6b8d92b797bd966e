-- What the service runs after every command's COMMIT, in the same pipeline (queries.h
-- kCommitBound): the commit bound behind the consistency token, and the outbox wake-up.
-- Appended to place.sql / pay.sql by scripts/bench-commands.sh --diagnose, to measure what
-- this statement costs on its own. (pg_notify makes this implicit transaction take an xid,
-- and PostgreSQL serializes notifying commits on a global lock held through the WAL flush.)
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS bound,
       pg_notify('shopcqrs_outbox', '') AS notified;
