# tests/serve.mk
