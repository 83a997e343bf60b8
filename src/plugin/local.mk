# src/plugin/local.mk
