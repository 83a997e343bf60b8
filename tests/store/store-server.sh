#!/bin/bash
# The store suite (bulk, batches, GridFS) against this test's FerretDB (started by with-ferretdb.sh).
. ./tests/env.sh
exec ./tests/store/test_store_server
