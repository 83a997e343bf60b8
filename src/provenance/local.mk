# src/provenance: the provenance stamp on stored documents, model lineage.
libnemesyst_core_la_SOURCES += src/provenance/provenance.h src/provenance/provenance.c src/provenance/code.h \
	src/provenance/code.c
