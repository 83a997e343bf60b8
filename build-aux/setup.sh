#!/bin/bash
# One-step set-up on a fresh Debian machine: system packages, the FerretDB server, and an optimised build of
# Nemesyst in _build/. Safe to run again: every step is skipped when already done.
#   bash build-aux/setup.sh [configure options...]
set -euo pipefail
cd "$(dirname "$0")/.."

# The HDF5 flavour configure will look for; none with --without-hdf5.
hdf5=libhdf5-dev
case " $* " in *" --enable-parallel-hdf5 "*) hdf5=libhdf5-openmpi-dev ;; esac
case " $* " in *" --without-hdf5 "* | *" --with-hdf5=no "*) hdf5= ;; esac
packages=(build-essential autoconf automake libtool pkg-config autoconf-archive
          openmpi-bin libopenmpi-dev libmongoc-dev libbson-dev libssl-dev libicu-dev libcurl4-openssl-dev ${hdf5:+"$hdf5"} check zlib1g-dev
          python3 python3-pymongo python3-gridfs python3-bson-ext python3-pytest python3-jsonschema openssl valgrind procps iproute2
          dataset-fashion-mnist slurmctld slurmd slurm-client munge clang libclang-rt-dev
          libopenblas-dev python3-torch python3-h5py python3-numpy python3-pandas gnuplot-nox
          python3-prov python3-pydot graphviz)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The embedded server (needs Go >= 1.24 on PATH; cached after the first build).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH=$PATH:/usr/local/go/bin; fi
build-aux/build-ferretdb.sh
# The official OpenLineage JSON schemas tests/stage/stage-openlineage.sh checks --openlineage's events against
# (cached; without a network that test says so and skips its validation, and fails under CI).
build-aux/openlineage-spec.sh >/dev/null || echo "setup: warning: the OpenLineage schemas could not be fetched (above)"

[ -x configure ] || autoreconf -fi
mkdir -p _build
cd _build
if [ ! -f Makefile ] || [ ../configure -nt config.status ] || [ $# -gt 0 ]; then
    ../configure "$@"
fi
make -j"$(nproc)"
echo "setup: built $(pwd)/nemesyst"
