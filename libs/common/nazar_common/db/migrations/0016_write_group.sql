-- nazar_write_group: nazar_write_samples (0007, 0010) with several outbox
-- rows. Ingest splits each group commit's samples by analyzer partition
-- (the partition of their host) as it writes them: one outbox row per
-- partition the group touches, already addressed to that partition's
-- routing key (p_routing_keys, p_message_ids and p_bodies are aligned), so
-- the relay publishes rows as they are stored instead of decoding and
-- re-encoding every batch.
--
-- nazar_write_samples stays for an ingest of the previous version (a
-- rolling upgrade), which still writes one unsplit row that the relay
-- splits; it becomes a call of nazar_write_group with that one row, so the
-- write itself is defined once.
CREATE FUNCTION nazar_write_group(
    p_keys         text[],
    p_min_time     timestamptz,
    p_series       bigint[],
    p_times        float8[],
    p_values       float8[],
    p_exchange     text,
    p_routing_keys text[],
    p_message_ids  uuid[],
    p_bodies       bytea[],
    p_hashes       bytea[] DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    fresh bigint;
BEGIN
    INSERT INTO ingest_requests (key, body_hash)
    SELECT k, h FROM unnest(p_keys, p_hashes) AS t(k, h) WHERE k IS NOT NULL ORDER BY k
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS fresh = ROW_COUNT;
    IF fresh <> coalesce(cardinality(p_keys), 0) THEN
        RAISE EXCEPTION 'an ingest request of this group was already stored'
            USING ERRCODE = 'NZ409';
    END IF;

    PERFORM nazar_prepare_write(p_min_time);

    INSERT INTO samples (time, series_id, value)
    SELECT to_timestamp(t), s, v FROM unnest(p_times, p_series, p_values) AS u(t, s, v);

    INSERT INTO outbox (exchange, routing_key, message_id, body)
    SELECT p_exchange, r, m, b FROM unnest(p_routing_keys, p_message_ids, p_bodies) AS o(r, m, b);
END
$$;

CREATE OR REPLACE FUNCTION nazar_write_samples(
    p_keys        text[],
    p_min_time    timestamptz,
    p_series      bigint[],
    p_times       float8[],
    p_values      float8[],
    p_exchange    text,
    p_routing_key text,
    p_message_id  uuid,
    p_body        bytea,
    p_hashes      bytea[] DEFAULT NULL
) RETURNS void
LANGUAGE sql AS $$
    SELECT nazar_write_group(
        p_keys, p_min_time, p_series, p_times, p_values, p_exchange,
        ARRAY[p_routing_key], ARRAY[p_message_id], ARRAY[p_body], p_hashes
    );
$$;
