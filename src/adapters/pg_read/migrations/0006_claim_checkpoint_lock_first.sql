-- shopcqrs_claim_checkpoint (0004) ran its INSERT ... ON CONFLICT DO NOTHING in every batch
-- (a speculative insertion into the primary key, then the conflict) although the row exists from
-- the first batch on: at live rates, with a batch transaction per one or two events, that was a
-- fifth of the claim's cost. Same contract, the row locked first and created only when missing.
CREATE OR REPLACE FUNCTION shopcqrs_claim_checkpoint(p_name text, p_xid bigint, p_position bigint,
                                                     p_bound bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  s projection_checkpoints%ROWTYPE;
BEGIN
  SELECT * INTO s FROM projection_checkpoints WHERE name = p_name FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO projection_checkpoints (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
    SELECT * INTO s FROM projection_checkpoints WHERE name = p_name FOR UPDATE;
  END IF;
  IF s.xid <> p_xid OR s.position <> p_position OR s.bound <> p_bound THEN
    RAISE EXCEPTION USING ERRCODE = 'SC409',
      MESSAGE = format('SHOPCQRS_CHECKPOINT_MOVED projection %s stored %s.%s.%s, expected %s.%s.%s',
                       p_name, s.xid, s.position, s.bound, p_xid, p_position, p_bound);
  END IF;
END $$;
