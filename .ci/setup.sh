#!/usr/bin/env bash
# Installs and starts everything IsoTest's tests need on a fresh Debian 12 machine. Idempotent.
#   - packages: a C compiler and musl (the engine's init agent), the cross compiler and musl for the other
#     architecture (the packaged agents), busybox-static (test root filesystems),
#     redis-server and PostgreSQL (examples), docker.io (Docker backend), crun (benchmark peer), slirp4netns
#     (the engine's outbound networks),
#     qemu-system-x86, linux-image-amd64 and cpio (.ci/v2vm, the cgroup v2 guest)
#   - dockerd in the background and the local image isotest/busybox:latest (.ci/docker-setup.sh)
#   - isotest/debian:bookworm and isotest/postgres:15-bookworm from Debian's mirror, in dockerd and as an
#     OCI layout in /var/cache/isotest/images (.ci/images.sh; cached, ~1 min the first time)
#   - a non-root user `isotest` for the rootless runs, with a delegated cgroup parent `isotest-rootless`,
#     subordinate id ranges (100000-165535) and a supplementary group `isotest-probe`
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (it installs packages and starts dockerd)" >&2
    exit 1
fi

need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
# musl: the init agent built against it starts faster than a static glibc one (native/build.sh)
command -v musl-gcc >/dev/null || need+=(musl-tools linux-libc-dev)
# The IsoTest.Engine package and the isotest tool carry the agent for linux-x64 and linux-arm64: the other
# architecture's is cross-compiled with Debian's cross gcc and that architecture's musl (multiarch).
case $(uname -m) in aarch64) cross=x86_64 debcross=amd64 ;; *) cross=aarch64 debcross=arm64 ;; esac
if ! command -v "$cross-linux-gnu-gcc" >/dev/null || [ ! -f "/usr/lib/$cross-linux-musl/musl-gcc.specs" ] || [ ! -d "/usr/$cross-linux-gnu/include/asm" ]; then
    dpkg --print-foreign-architectures | grep -qx "$debcross" || dpkg --add-architecture "$debcross"
    need+=("gcc-${cross//_/-}-linux-gnu" "linux-libc-dev-$debcross-cross" "musl-dev:$debcross")
fi
command -v busybox >/dev/null && file -L "$(command -v busybox)" | grep -q static || need+=(busybox-static)
command -v redis-server >/dev/null || need+=(redis-server)
command -v dockerd >/dev/null || need+=(docker.io)
command -v crun >/dev/null || need+=(crun)
command -v file >/dev/null || need+=(file)
command -v runuser >/dev/null || need+=(util-linux)
command -v openssl >/dev/null || need+=(openssl)           # the Docker TLS tests' certificates
command -v docker-registry >/dev/null || need+=(docker-registry)  # the image tests' local registry
command -v skopeo >/dev/null || need+=(skopeo)             # pushes the images the tests build
command -v debootstrap >/dev/null || need+=(debootstrap)     # .ci/images.sh: the Debian images
command -v umoci >/dev/null || need+=(umoci)               # the image benchmark's peer (skopeo copy + umoci unpack)
command -v htpasswd >/dev/null || need+=(apache2-utils)    # the registry's basic-auth users
command -v newuidmap >/dev/null || need+=(uidmap)          # rootless subordinate id ranges
command -v slirp4netns >/dev/null || need+=(slirp4netns)   # outbound networks' way out on the engine (root and rootless)
command -v python3 >/dev/null || need+=(python3)           # SeccompKernelTests installs compiled filters in a python3 child
command -v getcap >/dev/null || [ -x /sbin/getcap ] || need+=(libcap2-bin)  # RawXattrTests reads file capabilities back with getcap
command -v clang-14 >/dev/null && [ -n "$(ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a 2>/dev/null)" ] || need+=(clang libclang-rt-14-dev)  # bench/agent-fuzz (libFuzzer)
[ -e /usr/include/asm-generic/unistd.h ] || need+=(linux-libc-dev)  # SyscallTableTests reads the syscall numbers from the headers
# .ci/v2vm: a cgroup v2 guest under qemu, from Debian's own kernel and a busybox initramfs
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
ls /lib/modules/*/kernel/fs/9p/9p.ko* >/dev/null 2>&1 && ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
command -v cpio >/dev/null || need+=(cpio)
# PostgreSQL: the machine image ships server binaries in /usr/local/bin; Debian's package is the fallback.
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    apt-get update -qq
    # policy-rc.d: packages must not start their own services (redis, postgres); tests start their own.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

.ci/docker-setup.sh
# Real Debian images (bookworm minbase, and PostgreSQL 15 on it) for both backends, built once and cached.
.ci/images.sh

# The rootless user and its delegated cgroups (what a systemd user session gives on a v2 host).
id isotest >/dev/null 2>&1 || useradd --create-home --shell /bin/bash isotest
# Subordinate id ranges, so its containers map an image's owners as rootless Docker does (README "Rootless"; useradd
# adds them where login.defs says so, usermod where it did not), and a supplementary group the tests see dropped
# inside a container (issue 8, finding 9).
grep -q '^isotest:' /etc/subuid 2>/dev/null || usermod --add-subuids 100000-165535 isotest
grep -q '^isotest:' /etc/subgid 2>/dev/null || usermod --add-subgids 100000-165535 isotest
getent group isotest-probe >/dev/null || groupadd isotest-probe
id -nG isotest | grep -qw isotest-probe || usermod -a -G isotest-probe isotest
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    dir=/sys/fs/cgroup/isotest-rootless
    mkdir -p "$dir"
    # Controllers must be enabled in the parent for the delegated subtree to use them.
    for c in memory cpu pids cpuset; do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true; done
    chown -R isotest:isotest "$dir"
else
    for c in memory cpu pids cpuset; do
        dir=/sys/fs/cgroup/$c/isotest-rootless
        [ -d /sys/fs/cgroup/$c ] || continue
        mkdir -p "$dir"
        if [ "$c" = cpuset ]; then
            cat /sys/fs/cgroup/cpuset/cpuset.cpus > "$dir/cpuset.cpus"
            cat /sys/fs/cgroup/cpuset/cpuset.mems > "$dir/cpuset.mems"
        fi
        chown -R isotest:isotest "$dir"
    done
fi
echo "setup: ready"
