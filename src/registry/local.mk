# src/registry: nemesyst-registry, questions to the store: runs, models, lineage, verify, export, affected,
# diff; bundle and import move runs between stores (import: the one verb that writes)
# (README "Asking the store: nemesyst-registry"). The connection is configured as nemesyst's (app/plan.c).
bin_PROGRAMS += nemesyst-registry
nemesyst_registry_SOURCES = src/registry/verbs.c src/registry/registry.h src/registry/query.c src/registry/print.c \
	src/registry/runs.c src/registry/run-show.c src/registry/models.c src/registry/lineage.c src/registry/verify.c \
	src/registry/run-export.c src/registry/metrics.c src/registry/affected.c src/registry/get.c \
	src/registry/diff.c src/registry/prov.c src/registry/lineage-dot.c src/registry/bundle.c
nemesyst_registry_LDADD = libnemesyst_core.la
