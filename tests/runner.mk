# tests/runner.mk
