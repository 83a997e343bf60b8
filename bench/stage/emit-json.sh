#!/bin/sh
# Benchmark cleaner (executable): $BENCH_STAGE_DOCS extended-JSON lines on stdout, the documents of
# bench_stage_ingest's raw baseline.
exec awk -v n="${BENCH_STAGE_DOCS:-20000}" 'BEGIN {
    for (i = 0; i < n; i++) {
        printf "{\"i\": %d", i
        for (k = 0; k < 7; k++) printf ", \"s%d\": \"miNVpaKWqm\"", k
        for (k = 0; k < 7; k++) printf ", \"n%d\": %d", k, k * 7919
        printf "}\n"
    }
}'
