# bench/stage.mk
