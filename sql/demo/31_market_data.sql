-- 31_market_data.sql - futures market data for ES, NQ and CL.
--
-- Deterministic price paths (sums of sines), all relative to today (UTC):
--   ohlcv_data      one daily bar per symbol for EVERY calendar day from
--                   2024-01-01 to today (weekends included, so the manual's
--                   calendar-day gap query reports only real gaps), except
--                   one planted missing day (today - 12) for all symbols
--   trades_data     1,000 trades per front-month contract over the last 5 days
--   tbbo_data       500 per contract over the last 5 days
--   statistics_data settlement, cleared volume, open interest; last 60 days
--   definitions_data the contracts (4 per root)
-- Planted faults (last 7 days): 3 bars breaking OHLC logic (ES high < low,
-- NQ high < open/close, CL low > open); 6 bad trades (ES size 0 and -1, ES
-- side 'N' twice, NQ price 0, CL size 0); CL bars carrying two instrument_ids
-- (the roll to the next contract was not remapped).

-- JIT compilation (on by default where LLVM is installed) would make this
-- bulk load several times slower; the setting ends with this file's transaction.
SET LOCAL jit = off;

CREATE FUNCTION pg_temp.demo_close(p_root text, p_t double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_root
        WHEN 'ES' THEN 4750 + 1.1 * p_t + 60 * sin(p_t / 9.0) + 25 * sin(p_t / 2.3)
        WHEN 'NQ' THEN 16500 + 4.5 * p_t + 250 * sin(p_t / 8.0) + 90 * sin(p_t / 2.7)
        ELSE 72 + 8 * sin(p_t / 30.0) + 2 * sin(p_t / 3.1)
    END
$$;

CREATE FUNCTION pg_temp.demo_tick(p_root text, p_x double precision) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_root = 'CL' THEN round(p_x::numeric, 2) ELSE round(p_x::numeric * 4) / 4 END
$$;

-- Root symbols: price unit for ranges, volume scale, exchange details.
CREATE TEMPORARY TABLE tmp_roots ON COMMIT DROP AS
SELECT * FROM (VALUES
    (1, 'ES', 'XCME', 0.25, 50,   1.00, 1100000, 700000, 'IPNT', 'E-mini S&P 500'),
    (2, 'NQ', 'XCME', 0.25, 20,   4.00,  450000, 300000, 'IPNT', 'E-mini Nasdaq-100'),
    (3, 'CL', 'XNYM', 0.01, 1000, 0.05,  280000, 200000, 'BBL',  'Crude Oil')
) AS r(k, root, exchange, tick, multiplier, unit, vol_base, vol_range, uom, name);

-- Four contracts per root from the load date: ES/NQ quarterly (front = next
-- H/M/U/Z not past mid-month), CL monthly (k = 0 is the contract that just
-- expired, k = 1 the front).
CREATE TEMPORARY TABLE tmp_contracts ON COMMIT DROP AS
WITH today AS (
    SELECT (now() AT TIME ZONE 'UTC')::date AS d
), parts AS (
    SELECT d, extract(year FROM d)::integer AS y, extract(month FROM d)::integer AS m,
           extract(day FROM d)::integer AS dd
    FROM today
), firsts AS (
    SELECT r.root, r.k AS root_k,
           CASE WHEN r.root = 'CL'
                THEN make_date(p.y, p.m, 1) + CASE WHEN p.dd < 20 THEN interval '0 months' ELSE interval '1 month' END
                ELSE make_date(p.y, ((p.m - 1) / 3 + 1) * 3, 1)
                     + CASE WHEN p.m % 3 = 0 AND p.dd > 15 THEN interval '3 months' ELSE interval '0 months' END
           END::date AS first_month,
           CASE WHEN r.root = 'CL' THEN 1 ELSE 3 END AS step,
           CASE r.root WHEN 'ES' THEN 4916 WHEN 'NQ' THEN 6641 ELSE 3403 END AS first_id
    FROM tmp_roots r CROSS JOIN parts p
), months AS (
    SELECT f.root, f.root_k, c AS k, f.first_id + c AS instrument_id,
           (f.first_month + make_interval(months => f.step * c))::date AS cmonth
    FROM firsts f CROSS JOIN generate_series(0, 3) AS c
)
SELECT m.root, m.root_k, m.k, m.instrument_id, m.cmonth,
       m.root || substr('FGHJKMNQUVXZ', extract(month FROM m.cmonth)::integer, 1)
              || (extract(year FROM m.cmonth)::integer % 10) AS raw_symbol,
       CASE WHEN m.root = 'CL'
            THEN ((m.cmonth - interval '1 month')::date + 19)::timestamp AT TIME ZONE 'UTC' + interval '18 hours 30 minutes'
            ELSE (m.cmonth + 14 + (5 - extract(isodow FROM m.cmonth + 14)::integer + 7) % 7)::timestamp
                 AT TIME ZONE 'UTC' + interval '13 hours 30 minutes'
       END AS expiration,
       (m.root = 'CL' AND m.k = 1) OR (m.root <> 'CL' AND m.k = 0) AS is_front
FROM months m;

INSERT INTO definitions_data (ts_event, ts_recv, instrument_id, raw_symbol, asset, security_type, instrument_class,
                              exchange, currency, min_price_increment, contract_multiplier, unit_of_measure,
                              unit_of_measure_qty, activation, expiration, maturity_year, maturity_month,
                              publisher_id, created_at)
SELECT date_trunc('day', now()) - interval '1 day', date_trunc('day', now()) - interval '1 day' + interval '3 seconds',
       c.instrument_id, c.raw_symbol, c.root, 'FUT', 'F', r.exchange, 'USD', r.tick, r.multiplier, r.uom,
       r.multiplier, c.expiration - interval '1 year', c.expiration,
       extract(year FROM c.cmonth)::smallint, extract(month FROM c.cmonth)::smallint, 1,
       date_trunc('day', now()) - interval '1 day' + interval '5 minutes'
FROM tmp_contracts c JOIN tmp_roots r ON r.root = c.root
ORDER BY c.instrument_id;

-- ---------------------------------------------------------------------------
-- Daily bars
-- ---------------------------------------------------------------------------

INSERT INTO ohlcv_data (ts_event, instrument_id, symbol, granularity, open_price, high_price, low_price,
                        close_price, volume, trade_count, vwap, rtype, publisher_id, data_source, created_at)
SELECT b.day::timestamp AT TIME ZONE 'UTC',
       b.instrument_id, b.root, '1d',
       b.o, b.h, b.l, b.c, b.vol, (b.vol / 7)::integer,
       pg_temp.demo_tick(b.root, ((b.o + b.h + b.l + b.c) / 4)::double precision),
       35, 1, 'databento',
       least(now(), (b.day + 1)::timestamp AT TIME ZONE 'UTC' + interval '2 hours 15 minutes')
FROM (
    SELECT x.*,
           greatest(x.o, x.c) + pg_temp.demo_tick(x.root, x.unit * (1 + (x.d * 7 + x.k) % 20)) AS h,
           least(x.o, x.c) - pg_temp.demo_tick(x.root, x.unit * (1 + (x.d * 11 + x.k) % 20)) AS l
    FROM (
        SELECT r.root, r.k, r.unit, d, ('2024-01-01'::date + d) AS day,
               CASE WHEN r.root = 'CL' AND ('2024-01-01'::date + d) >= cl.expires
                    THEN cl.next_id ELSE fr.instrument_id END AS instrument_id,
               pg_temp.demo_tick(r.root, pg_temp.demo_close(r.root, d - 1)
                                         + r.unit * 0.6 * sin(d * 1.7)) AS o,
               pg_temp.demo_tick(r.root, pg_temp.demo_close(r.root, d)) AS c,
               (r.vol_base + (d * 7919 + r.k * 104729) % r.vol_range)::bigint AS vol
        FROM tmp_roots r
        JOIN tmp_contracts fr ON fr.root = r.root AND fr.k = 0
        CROSS JOIN (SELECT min(c.expiration)::date AS expires,
                           min(c.instrument_id) + 1 AS next_id
                    FROM tmp_contracts c WHERE c.root = 'CL') AS cl
        CROSS JOIN generate_series(0, (now() AT TIME ZONE 'UTC')::date - '2024-01-01'::date) AS d
        -- the planted gap: no bar at all for today - 12
        WHERE ('2024-01-01'::date + d) <> (now() AT TIME ZONE 'UTC')::date - 12
    ) AS x
) AS b
ORDER BY 1, 2;

-- Planted OHLC violations in the last 7 days.
UPDATE ohlcv_data SET high_price = low_price, low_price = high_price          -- high < low
WHERE symbol = 'ES' AND ts_event = ((now() AT TIME ZONE 'UTC')::date - 2)::timestamp AT TIME ZONE 'UTC';
UPDATE ohlcv_data SET high_price = least(open_price, close_price) - 1.00      -- high < open / close
WHERE symbol = 'NQ' AND ts_event = ((now() AT TIME ZONE 'UTC')::date - 3)::timestamp AT TIME ZONE 'UTC';
UPDATE ohlcv_data SET low_price = open_price + 0.01                            -- low > open
WHERE symbol = 'CL' AND ts_event = ((now() AT TIME ZONE 'UTC')::date - 5)::timestamp AT TIME ZONE 'UTC';

-- ---------------------------------------------------------------------------
-- Trades and TBBO of the front-month contracts, last 5 days
-- ---------------------------------------------------------------------------

INSERT INTO trades_data (ts_event, ts_recv, instrument_id, symbol, price, size, side, action, depth, flags,
                         sequence, ts_in_delta, rtype, publisher_id, created_at)
SELECT t.ts, t.ts + (t.delta / 1000.0) * interval '1 millisecond',
       t.instrument_id, t.raw_symbol,
       CASE WHEN t.root = 'NQ' AND t.n = 120 THEN 0                                   -- planted: price 0
            ELSE pg_temp.demo_tick(t.root, pg_temp.demo_close(t.root, t.tday) + t.unit * 3 * sin(t.n * 0.37)) END,
       CASE WHEN t.root = 'ES' AND t.n = 55 THEN 0                                    -- planted: size 0
            WHEN t.root = 'ES' AND t.n = 56 THEN -1                                   -- planted: size -1
            WHEN t.root = 'CL' AND t.n = 300 THEN 0                                   -- planted: size 0
            ELSE 1 + (t.n * 7 + t.k) % 15 END,
       CASE WHEN t.root = 'ES' AND t.n IN (400, 401) THEN 'N'                         -- planted: no side
            WHEN (t.n * 3 + t.k) % 2 = 0 THEN 'B' ELSE 'S' END,
       'T', 0, 0,
       100000000 + t.n * 137 + t.k,
       t.delta, 0, 1,
       t.ts + interval '2 seconds'
FROM (
    SELECT r.root, r.k, r.unit, c.instrument_id, c.raw_symbol, n,
           now() - n * interval '432 seconds' - r.k * interval '7 seconds' AS ts,
           extract(epoch FROM now() - n * interval '432 seconds' - timestamptz '2024-01-01 00:00:00+00')::double precision
               / 86400 AS tday,
           12000 + ((n * 37 + r.k) % 250) * 100 AS delta
    FROM tmp_roots r
    JOIN tmp_contracts c ON c.root = r.root AND c.is_front
    CROSS JOIN generate_series(1, 1000) AS n
) AS t
ORDER BY t.ts;

INSERT INTO tbbo_data (ts_event, ts_recv, instrument_id, symbol, price, size, side, action, flags, sequence,
                       bid_px_00, ask_px_00, bid_sz_00, ask_sz_00, bid_ct_00, ask_ct_00, publisher_id, created_at)
SELECT t.ts, t.ts + interval '15 milliseconds', t.instrument_id, t.raw_symbol, t.px,
       1 + (t.n * 5 + t.k) % 12,
       CASE WHEN (t.n + t.k) % 2 = 0 THEN 'B' ELSE 'S' END,
       'T', 0, 200000000 + t.n * 211 + t.k,
       t.px - t.tick * (1 + t.n % 2), t.px + t.tick * (2 - t.n % 2),
       5 + (t.n * 13) % 60, 5 + (t.n * 17) % 60, 1 + t.n % 9, 1 + (t.n * 3) % 9,
       1, t.ts + interval '2 seconds'
FROM (
    SELECT r.root, r.k, r.tick, c.instrument_id, c.raw_symbol, n,
           now() - n * interval '864 seconds' - r.k * interval '5 seconds' AS ts,
           pg_temp.demo_tick(r.root, pg_temp.demo_close(r.root,
               extract(epoch FROM now() - n * interval '864 seconds' - timestamptz '2024-01-01 00:00:00+00')::double precision
               / 86400) + r.unit * 3 * sin(n * 0.53)) AS px
    FROM tmp_roots r
    JOIN tmp_contracts c ON c.root = r.root AND c.is_front
    CROSS JOIN generate_series(1, 500) AS n
) AS t
ORDER BY t.ts;

-- ---------------------------------------------------------------------------
-- Daily statistics of the front-month contracts, last 60 days
-- ---------------------------------------------------------------------------

INSERT INTO statistics_data (ts_event, ts_recv, ts_ref, instrument_id, symbol, stat_type, price, quantity,
                             sequence, update_action, stat_flags, publisher_id, created_at)
SELECT s.ts, s.ts + interval '40 milliseconds', s.day::timestamp AT TIME ZONE 'UTC',
       s.instrument_id, s.raw_symbol, st.stat_type,
       CASE WHEN st.stat_type = 3 THEN o.close_price END,
       CASE st.stat_type WHEN 6 THEN o.volume
                         WHEN 9 THEN (o.volume * 2 + 150000 + (s.d * 131) % 40000) END,
       300000000 + s.d * 10 + st.stat_type * 1000 + s.k,
       1, 0, 1, s.ts + interval '1 minute'
FROM (
    SELECT r.root, r.k, c.instrument_id, c.raw_symbol, d,
           (now() AT TIME ZONE 'UTC')::date - d AS day,
           ((now() AT TIME ZONE 'UTC')::date - d)::timestamp AT TIME ZONE 'UTC' + interval '21 hours' AS ts
    FROM tmp_roots r
    JOIN tmp_contracts c ON c.root = r.root AND c.is_front
    CROSS JOIN generate_series(1, 60) AS d
) AS s
JOIN ohlcv_data o ON o.symbol = s.root AND o.ts_event = s.day::timestamp AT TIME ZONE 'UTC'
CROSS JOIN (VALUES (3), (6), (9)) AS st(stat_type)
ORDER BY s.ts, s.instrument_id, st.stat_type;

DROP FUNCTION pg_temp.demo_close(text, double precision);
DROP FUNCTION pg_temp.demo_tick(text, double precision);
