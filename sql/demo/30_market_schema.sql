-- 30_market_schema.sql - historical market data of the Hist Data Ingestor
-- (Databento schemas ohlcv-1d, trades, tbbo, statistics, definition).
--
-- In production these are TimescaleDB hypertables; here they are plain tables
-- with the same columns and time indexes (no timescaledb schema is faked, so
-- the manual's timescaledb_information queries do not run).
-- Symbology: daily bars are stored under the root symbol (ES, NQ, CL);
-- intraday trades / TBBO / statistics under the raw contract symbol (ESZ6...),
-- both with the contract's instrument_id.

CREATE TABLE definitions_data (
    ts_event            timestamptz NOT NULL,
    ts_recv             timestamptz,
    instrument_id       integer NOT NULL,
    raw_symbol          text NOT NULL,
    asset               text NOT NULL,
    security_type       text NOT NULL DEFAULT 'FUT',
    instrument_class    char(1) NOT NULL DEFAULT 'F',
    exchange            text NOT NULL,
    currency            text NOT NULL DEFAULT 'USD',
    min_price_increment numeric(19,9) NOT NULL,
    contract_multiplier integer,
    unit_of_measure     text,
    unit_of_measure_qty numeric(19,9),
    activation          timestamptz,
    expiration          timestamptz,
    maturity_year       smallint,
    maturity_month      smallint,
    publisher_id        smallint NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT definitions_data_pkey PRIMARY KEY (instrument_id, ts_event)
);
CREATE INDEX definitions_data_raw_symbol_idx ON definitions_data (raw_symbol);
CREATE INDEX definitions_data_asset_idx ON definitions_data (asset, expiration);
COMMENT ON TABLE definitions_data IS 'Instrument definitions (Databento definition schema).';

CREATE TABLE ohlcv_data (
    ts_event      timestamptz NOT NULL,
    instrument_id integer NOT NULL,
    symbol        text NOT NULL,
    granularity   text NOT NULL DEFAULT '1d',
    open_price    numeric(19,9) NOT NULL,
    high_price    numeric(19,9) NOT NULL,
    low_price     numeric(19,9) NOT NULL,
    close_price   numeric(19,9) NOT NULL,
    volume        bigint NOT NULL,
    trade_count   integer,
    vwap          numeric(19,9),
    rtype         smallint NOT NULL DEFAULT 35,
    publisher_id  smallint NOT NULL DEFAULT 1,
    data_source   text NOT NULL DEFAULT 'databento',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ohlcv_data_pkey PRIMARY KEY (instrument_id, ts_event, granularity)
);
CREATE INDEX ohlcv_data_symbol_ts_idx ON ohlcv_data (symbol, ts_event DESC);
CREATE INDEX ohlcv_data_ts_event_idx ON ohlcv_data (ts_event DESC);
COMMENT ON TABLE ohlcv_data IS
    'Daily OHLCV bars (ts_event = 00:00 UTC of the trading day). The ingestor validates high >= open/close/low; the table does not.';

CREATE TABLE trades_data (
    ts_event      timestamptz NOT NULL,
    ts_recv       timestamptz NOT NULL,
    instrument_id integer NOT NULL,
    symbol        text NOT NULL,
    price         numeric(19,9) NOT NULL,
    size          integer NOT NULL,
    side          char(1) NOT NULL,
    action        char(1) NOT NULL DEFAULT 'T',
    depth         smallint NOT NULL DEFAULT 0,
    flags         smallint NOT NULL DEFAULT 0,
    sequence      bigint NOT NULL,
    ts_in_delta   integer,
    rtype         smallint NOT NULL DEFAULT 0,
    publisher_id  smallint NOT NULL DEFAULT 1,
    data_source   text NOT NULL DEFAULT 'databento',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX trades_data_instrument_ts_seq_idx ON trades_data (instrument_id, ts_event, sequence);
CREATE INDEX trades_data_symbol_ts_idx ON trades_data (symbol, ts_event DESC);
CREATE INDEX trades_data_ts_event_idx ON trades_data (ts_event DESC);
COMMENT ON TABLE trades_data IS 'Trades (Databento trades schema); side B = buy aggressor, S = sell aggressor.';

CREATE TABLE tbbo_data (
    ts_event      timestamptz NOT NULL,
    ts_recv       timestamptz NOT NULL,
    instrument_id integer NOT NULL,
    symbol        text NOT NULL,
    price         numeric(19,9) NOT NULL,
    size          integer NOT NULL,
    side          char(1) NOT NULL,
    action        char(1) NOT NULL DEFAULT 'T',
    flags         smallint NOT NULL DEFAULT 0,
    sequence      bigint NOT NULL,
    bid_px_00     numeric(19,9),
    ask_px_00     numeric(19,9),
    bid_sz_00     integer,
    ask_sz_00     integer,
    bid_ct_00     integer,
    ask_ct_00     integer,
    publisher_id  smallint NOT NULL DEFAULT 1,
    data_source   text NOT NULL DEFAULT 'databento',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tbbo_data_instrument_ts_seq_idx ON tbbo_data (instrument_id, ts_event, sequence);
CREATE INDEX tbbo_data_symbol_ts_idx ON tbbo_data (symbol, ts_event DESC);
CREATE INDEX tbbo_data_ts_event_idx ON tbbo_data (ts_event DESC);
COMMENT ON TABLE tbbo_data IS 'Trades with the top of book just before each trade (Databento tbbo schema).';

CREATE TABLE statistics_data (
    ts_event      timestamptz NOT NULL,
    ts_recv       timestamptz NOT NULL,
    ts_ref        timestamptz,
    instrument_id integer NOT NULL,
    symbol        text NOT NULL,
    stat_type     smallint NOT NULL,
    price         numeric(19,9),
    quantity      bigint,
    sequence      bigint NOT NULL,
    update_action smallint NOT NULL DEFAULT 1,
    stat_flags    smallint NOT NULL DEFAULT 0,
    publisher_id  smallint NOT NULL DEFAULT 1,
    data_source   text NOT NULL DEFAULT 'databento',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX statistics_data_instrument_ts_type_idx ON statistics_data (instrument_id, ts_event, stat_type);
CREATE INDEX statistics_data_symbol_ts_idx ON statistics_data (symbol, ts_event DESC);
COMMENT ON TABLE statistics_data IS
    'Exchange statistics (Databento statistics schema): stat_type 3 = settlement price, 6 = cleared volume, 9 = open interest.';
