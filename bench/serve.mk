# bench/serve.mk
