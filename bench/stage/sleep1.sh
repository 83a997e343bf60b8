#!/bin/sh
# Benchmark cleaner: sleeps one second and writes nothing (bench/run-stage.sh "parallel": rounds that overlap).
sleep 1
