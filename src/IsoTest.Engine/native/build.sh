#!/bin/sh
# Builds the init agent: native/build.sh OUTPUT [ARCH [musl]]. Run by `dotnet build` and `dotnet pack`
# (IsoTest.Engine.csproj, which rebuilds when any native/*.c, native/*.h or this script changes): ARCH is x86_64 or aarch64 (default: this machine's); "musl" refuses the glibc fallback
# (the packaged agents are always musl-static). Every native/*.c is one translation unit of the agent.
#
# musl when it is installed (Debian: apt-get install musl-tools), else glibc. Both are static, but a
# static glibc binary probes the CPU's caches with cpuid before main, and every cpuid traps to the
# hypervisor in a VM: measured here, exec to exit of an empty program took 0.49-0.62 ms with glibc and
# 0.16-0.21 ms with musl, and the agent is exec'd once per container.
#
# Another architecture is cross-compiled with Debian's cross gcc and that architecture's musl through
# multiarch (for aarch64: gcc-aarch64-linux-gnu, linux-libc-dev-arm64-cross, musl-dev:arm64; .ci/setup.sh).
# The result is checked with readelf: the right machine, statically linked (no interpreter, no dynamic section).
set -eu
out=$1
arch=${2:-$(uname -m)}
require=${3:-}
dir=$(dirname "$0")
srcs=$(ls "$dir"/*.c)
flags="-std=gnu11 -O2 -Wall -Wextra -Werror -static -I$dir"

case $arch in
    x86_64) machine="X86-64"; debarch=amd64 ;;
    aarch64) machine="AArch64"; debarch=arm64 ;;
    *) echo "isotest-init: unknown architecture '$arch' (x86_64 or aarch64)" >&2; exit 1 ;;
esac

check() {
    if ! command -v readelf >/dev/null 2>&1; then
        echo "isotest-init: readelf not found (apt-get install binutils): cannot check $out" >&2
        exit 1
    fi
    if ! readelf -hW "$out" | grep -q "Machine:.*$machine"; then
        echo "isotest-init: $out is not a $machine binary: $(readelf -hW "$out" | grep Machine:)" >&2
        exit 1
    fi
    if readelf -lW "$out" | grep -q INTERP || readelf -dW "$out" | grep -q NEEDED; then
        echo "isotest-init: $out is not statically linked" >&2
        exit 1
    fi
    if command -v file >/dev/null 2>&1; then
        echo "isotest-init: $(file -b "$out")"
    fi
}

if [ "$arch" = "$(uname -m)" ]; then
    if command -v musl-gcc >/dev/null 2>&1; then
        # musl ships no kernel headers: take linux/ and asm/ from the system after musl's own headers.
        multiarch=$(cc -dumpmachine 2>/dev/null || echo "$arch-linux-gnu")
        # shellcheck disable=SC2086
        musl-gcc $flags -idirafter /usr/include -idirafter "/usr/include/$multiarch" -o "$out" $srcs
        check
        exit 0
    fi
    if [ "$require" = musl ]; then
        echo "isotest-init: musl-gcc not found; the packaged agent must be musl-static: apt-get install musl-tools (.ci/setup.sh)" >&2
        exit 1
    fi
    echo "isotest-init: musl-gcc not found, building with glibc (each container starts ~0.4 ms slower in a VM; apt-get install musl-tools)" >&2
    # shellcheck disable=SC2086
    cc $flags -o "$out" $srcs
    check
    exit 0
fi

cross=$arch-linux-gnu-gcc
specs=/usr/lib/$arch-linux-musl/musl-gcc.specs
headers=/usr/$arch-linux-gnu/include
if ! command -v "$cross" >/dev/null 2>&1 || [ ! -f "$specs" ] || [ ! -d "$headers/asm" ]; then
    echo "isotest-init: cross-compiling for $arch needs $cross, $specs and $headers/asm: as root," \
        "dpkg --add-architecture $debarch && apt-get update && apt-get install gcc-$arch-linux-gnu linux-libc-dev-$debarch-cross musl-dev:$debarch (.ci/setup.sh does this)" >&2
    exit 1
fi
# The specs file points the compiler at that architecture's musl headers, crt files and libc.a; kernel
# headers come from the cross toolchain's sysroot.
# shellcheck disable=SC2086
"$cross" -specs "$specs" $flags -idirafter "$headers" -o "$out" $srcs
check
