#!/bin/sh
# SPDX-License-Identifier: MIT
# cmake_consumer.sh: configures, builds and runs test/consumer.c through
# find_package(execmem) and the imported target execmem::execmem.
# Usage: test/cmake_consumer.sh PREFIX|"" BUILD_DIR [CMAKE_ARG...]  (empty
# PREFIX: the system's, as installed by the Debian packages)
set -eu
pfx=$1
dir=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)/cmake_consumer
rm -rf "$dir"
cmake -S "$src" -B "$dir" ${pfx:+-DCMAKE_PREFIX_PATH="$pfx"} -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$dir"
LD_LIBRARY_PATH="${pfx:+$pfx/lib}" "$dir/consumer"
