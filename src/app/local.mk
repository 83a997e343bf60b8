libnemesyst_core_la_SOURCES += src/app/app.h src/app/configure.c src/app/run.c src/app/plan.h src/app/plan.c
# mpirun with signals forwarded so that nemesyst winds down and exits 130 or 143 (see the script's header)
bin_SCRIPTS = src/app/nemesyst-mpirun
EXTRA_DIST += src/app/nemesyst-mpirun
