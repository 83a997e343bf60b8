# bench/store.mk
