#!/usr/bin/env bash
# The evaluation runs behind docs/evaluation.md: magnet test on Binance BTC and ETH candles,
# estimated vs realised liquidations, and the calibration that produced liqsignals/presets/.
#
# Run from the repository root:   bash benchmarks/evaluation_runs.sh [OUT]
# Needs ../shared/data (candles and the research-only realised liquidation CSVs). Reports and JSON go
# to OUT (default build/eval, ignored by git); the magnet plots (candle data only) are copied to
# docs/images/eval_*.png. Plots of the research data stay in OUT: they are never committed.
# Takes about two minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/eval}
DATA=../shared/data
BIN=$DATA/binance
RES=$DATA/research
LS=${LIQSIGNALS:-.venv/bin/liqsignals}
if [ ! -d "$RES" ]; then
    echo "evaluation_runs: $RES not found (the research data is not part of the project)" >&2
    exit 1
fi
mkdir -p "$OUT" docs/images

run() {  # run NAME ARGS...: print the command, keep its JSON in OUT/NAME.json
    local name=$1
    shift
    echo "\$ liqsignals $*" | sed "s#$OUT/#OUT/#g"
    "$LS" "$@" --json 2>"$OUT/$name.log" >"$OUT/$name.json"
    cat "$OUT/$name.json"
    echo
}

# ---------------------------------------------------------------- magnet test (candles only)
for SYM in BTC ETH; do
    run "magnets_${SYM}_1h" evaluate magnets --datadir $BIN --pairs $SYM/USDT:USDT --timeframe 1h \
        --timerange 20230101-20250601 --report "$OUT/magnets_${SYM}_1h.md"
    run "magnets_${SYM}_1h_4h" evaluate magnets --datadir $BIN --pairs $SYM/USDT:USDT \
        --timeframe 1h --timerange 20230101-20250601 --horizon 4h \
        --report "$OUT/magnets_${SYM}_1h_4h.md" --windows 1w --horizons 4h --bands 5
done
run magnets_pooled_1h evaluate magnets --datadir $BIN --pairs BTC/USDT:USDT ETH/USDT:USDT \
    --timeframe 1h --timerange 20230101-20250601
for RULE in nearest magnet; do
    run "magnets_BTC_1h_$RULE" evaluate magnets --datadir $BIN --pairs BTC/USDT:USDT \
        --timeframe 1h --timerange 20230101-20250601 --rule $RULE
done
run magnets_BTC_15m evaluate magnets --datadir $BIN --pairs BTC/USDT:USDT --timeframe 15m \
    --timerange 20230201-20250601
run magnets_BTC_15m_4h evaluate magnets --datadir $BIN --pairs BTC/USDT:USDT --timeframe 15m \
    --timerange 20230201-20250601 --horizon 4h

for SYM in BTC ETH; do
    sym=$(echo $SYM | tr '[:upper:]' '[:lower:]')
    cp "$OUT/magnets_${SYM}_1h_grid.png" docs/images/eval_${sym}_1h_grid.png
    cp "$OUT/magnets_${SYM}_1h_distance.png" docs/images/eval_${sym}_1h_1d_distance.png
    cp "$OUT/magnets_${SYM}_1h_4h_distance.png" docs/images/eval_${sym}_1h_4h_distance.png
done

# ---------------------------------------------------------------- estimated vs realised
# test period 2025-03-01 .. 2025-05-31 (bars that lie entirely inside 20250301-20250601)
for SYM in BTC ETH; do
    for TF in 15m 1h; do
        run "realised_${SYM}_${TF}_default" evaluate realised --datadir $BIN --pairs $SYM/USDT:USDT \
            --timeframe $TF --realised $RES/binance_${SYM}_liquidations_4h.csv \
            --timerange 20250301-20250601 --report "$OUT/realised_${SYM}_${TF}_default.md"
    done
done

# ---------------------------------------------------------------- calibration
for SYM in BTC ETH; do
    sym=$(echo $SYM | tr '[:upper:]' '[:lower:]')
    run "calibrate_${SYM}_15m" calibrate --datadir $BIN --pairs $SYM/USDT:USDT --timeframe 15m \
        --realised $RES/binance_${SYM}_liquidations_4h.csv \
        --train 20241101-20250301 --test 20250301-20250601 --budget 120 --seed 0 \
        --out liqsignals/presets/binance_${sym}.json
    for TF in 15m 1h; do
        run "realised_${SYM}_${TF}_calibrated" evaluate realised --datadir $BIN \
            --pairs $SYM/USDT:USDT --timeframe $TF \
            --realised $RES/binance_${SYM}_liquidations_4h.csv --timerange 20250301-20250601 \
            --model binance_${sym} --report "$OUT/realised_${SYM}_${TF}_calibrated.md"
    done
done
# transfer: the BTC preset on ETH, the ETH preset on BTC (test period)
run realised_ETH_15m_btcpreset evaluate realised --datadir $BIN --pairs ETH/USDT:USDT \
    --timeframe 15m --realised $RES/binance_ETH_liquidations_4h.csv \
    --timerange 20250301-20250601 --model binance_btc
run realised_BTC_15m_ethpreset evaluate realised --datadir $BIN --pairs BTC/USDT:USDT \
    --timeframe 15m --realised $RES/binance_BTC_liquidations_4h.csv \
    --timerange 20250301-20250601 --model binance_eth
echo "evaluation_runs: reports and JSON in $OUT"
