# src/serve: rank 0's database server lifecycle (engines: mongod, ferretdb).
libnemesyst_core_la_SOURCES += src/serve/serve.c src/serve/serve.h src/serve/spec.c src/serve/spec.h \
	src/serve/server.c src/serve/server.h src/serve/proc.h \
	src/serve/engine.c src/serve/engine.h src/serve/engine-mongod.c src/serve/engine-ferretdb.c \
	src/serve/client.c src/serve/login.c src/serve/login.h

# Install a FerretDB binary beside nemesyst when one is at hand (from $NEMESYST_FERRETDB or the build cache), so
# an installed nemesyst serves with zero installs; without one this does nothing.
install-exec-local:
	@src=`$(SHELL) $(top_srcdir)/build-aux/build-ferretdb.sh --print-path`; \
	if test -n "$$src" && test -x "$$src"; then \
	  $(MKDIR_P) "$(DESTDIR)$(pkglibexecdir)" && \
	  echo " $(INSTALL_PROGRAM) $$src $(DESTDIR)$(pkglibexecdir)/ferretdb" && \
	  $(INSTALL_PROGRAM) "$$src" "$(DESTDIR)$(pkglibexecdir)/ferretdb"; \
	else echo "ferretdb: no binary to install (build one with build-aux/build-ferretdb.sh)"; fi

uninstall-local:
	rm -f "$(DESTDIR)$(pkglibexecdir)/ferretdb"
