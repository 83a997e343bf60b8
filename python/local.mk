# python/local.mk: the adapter that runs original-style Python stage scripts (see python/nemesyst_adapter.py).
pkgdata_DATA += python/nemesyst_adapter.py
EXTRA_DIST += python/nemesyst_adapter.py
