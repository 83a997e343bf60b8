# tests/store.mk
