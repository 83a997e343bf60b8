# tests/stage.mk
