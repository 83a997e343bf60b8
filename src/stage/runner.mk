# src/stage/runner.mk
