#!/bin/sh
# Builds the init agent: native/build.sh OUTPUT. Run by `dotnet build` (IsoTest.Engine.csproj), which
# rebuilds when any native/*.c, native/*.h or this script changes.
#
# musl when it is installed (Debian: apt-get install musl-tools), else glibc. Both are static, but a
# static glibc binary probes the CPU's caches with cpuid before main, and every cpuid traps to the
# hypervisor in a VM: measured here, exec to exit of an empty program took 0.49-0.62 ms with glibc and
# 0.16-0.21 ms with musl, and the agent is exec'd once per container.
set -eu
out=$1
dir=$(dirname "$0")
src="$dir/proto.c $dir/spec.c $dir/shim.c $dir/init.c $dir/rootfs.c $dir/mounts.c $dir/exec.c $dir/harden.c"
flags="-std=gnu11 -O2 -Wall -Wextra -Werror -static"
if command -v musl-gcc >/dev/null 2>&1; then
    # musl ships no kernel headers: take linux/ and asm/ from the system after musl's own headers.
    multiarch=$(cc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
    # shellcheck disable=SC2086 # $src is a list of paths without spaces (native/ of this repository)
    exec musl-gcc $flags -idirafter /usr/include -idirafter "/usr/include/$multiarch" -o "$out" $src
fi
echo "isotest-init: musl-gcc not found, building with glibc (each container starts ~0.4 ms slower in a VM; apt-get install musl-tools)" >&2
# shellcheck disable=SC2086
exec cc $flags -o "$out" $src
