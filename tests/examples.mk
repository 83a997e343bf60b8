# tests/examples.mk
