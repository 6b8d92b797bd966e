-- The write server's epochs (cqrs/commit_bound.h): one row per start of the server. A crash can
-- hand out again xids that transactions took and rolled back just before it, below commit bounds
-- that read stores already hold; commit bounds therefore carry the epoch in their high bits, so
-- every bound of a later start is above every bound of an earlier one.
--
-- A start is named by the cluster's system identifier, its timeline (a point-in-time restore
-- starts a new one) and the start time of the checkpointer, which the postmaster starts again
-- after a crash of any of its processes too (pg_postmaster_start_time() stays the same then).
CREATE TABLE write_epochs (
  epoch              bigint PRIMARY KEY,
  system_identifier  bigint NOT NULL,
  timeline           integer NOT NULL,
  started_at         timestamptz NOT NULL,
  recorded_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (system_identifier, timeline, started_at)
);

-- The epoch of the running server, recorded by its first caller. Sessions call it once when they
-- connect (a session cannot outlive its server's start) and keep it in shopcqrs.write_epoch.
CREATE FUNCTION shopcqrs_write_epoch() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_system bigint;
  v_timeline integer;
  v_started timestamptz;
  v_epoch bigint;
BEGIN
  SELECT system_identifier INTO v_system FROM pg_control_system();
  SELECT timeline_id INTO v_timeline FROM pg_control_checkpoint();
  SELECT coalesce(min(backend_start), pg_postmaster_start_time()) INTO v_started
    FROM pg_stat_activity WHERE backend_type = 'checkpointer';
  SELECT epoch INTO v_epoch FROM write_epochs
   WHERE system_identifier = v_system AND timeline = v_timeline AND started_at = v_started;
  IF FOUND THEN
    RETURN v_epoch;
  END IF;
  PERFORM pg_advisory_xact_lock(7521439710283611649);  -- one recorder at a time
  SELECT epoch INTO v_epoch FROM write_epochs
   WHERE system_identifier = v_system AND timeline = v_timeline AND started_at = v_started;
  IF FOUND THEN
    RETURN v_epoch;
  END IF;
  INSERT INTO write_epochs (epoch, system_identifier, timeline, started_at)
  SELECT coalesce(max(epoch), 0) + 1, v_system, v_timeline, v_started FROM write_epochs
  RETURNING epoch INTO v_epoch;
  RETURN v_epoch;
END $$;

-- The commit bound right now (epoch << 44 | xmax), for tools and tests; the service composes it
-- from its session's epoch instead.
CREATE FUNCTION shopcqrs_commit_bound() RETURNS bigint
LANGUAGE sql AS $$
  SELECT (shopcqrs_write_epoch() << 44) | pg_snapshot_xmax(pg_current_snapshot())::text::bigint
$$;
