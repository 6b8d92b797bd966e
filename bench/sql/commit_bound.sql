-- What the service runs after every command's COMMIT, in the same pipeline (queries.h
-- kCommitBound): the commit bound behind the consistency token. It takes no xid. (The outbox
-- readers are woken by one NOTIFY per burst of commits from the write store's CommitNotifier,
-- on a connection of its own, not by the command's session.)
-- Appended to place.sql / pay.sql by scripts/bench-commands.sh --diagnose, to measure what
-- this statement costs on its own.
-- The service's sessions record the write server's epoch when they connect (kRecordSessionEpoch);
-- a pgbench session has none, so it stands in with 1: the same work per call.
SELECT (coalesce(current_setting('shopcqrs.write_epoch', true), '1')::bigint << 44) |
       pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS bound;
