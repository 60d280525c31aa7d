-- wrk script: single-customer predictions by features (loopback only).
-- Usage: wrk -t1 -c8 -d10s --latency -s bench/predict.lua http://127.0.0.1:18080/v1/predict
-- INTERVALS=false in the environment asks for the point forecasts only.
local intervals = os.getenv("INTERVALS") or "true"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"horizon": 4, "intervals": ' .. intervals .. ', "customers": [{"id": "ACME-17", "segment": "key", "monetary": 2400, "recency_days": 12, "frequency": 5, "tenure_periods": 8}]}'
