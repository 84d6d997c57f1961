#!/usr/bin/env bash
# Prepares a Docker Engine for the Docker backend tests. Idempotent: run it as often as you like.
#   1. starts dockerd (Debian docker.io) in the background unless a daemon already answers;
#   2. waits up to 30 s for its socket;
#   3. builds the local image isotest/busybox:latest from busybox-static (there is no Docker Hub here).
# Environment: DOCKERD_LOG (default /tmp/isotest-dockerd.log), ISOTEST_DOCKER_IMAGE (default isotest/busybox:latest).
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=${DOCKERD_LOG:-/tmp/isotest-dockerd.log}
IMAGE=${ISOTEST_DOCKER_IMAGE:-isotest/busybox:latest}
# The newer docker CLI in /usr/local/bin defaults to an API newer than Debian's daemon (1.41).
export DOCKER_API_VERSION=${DOCKER_API_VERSION:-1.41}
unset DOCKER_HOST

die() { echo "docker-setup: $*" >&2; exit 1; }

command -v dockerd >/dev/null || die "dockerd not found: apt-get install docker.io"
command -v docker >/dev/null || die "docker CLI not found: apt-get install docker.io"

daemon_up() { docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

if ! daemon_up; then
    if [ "$(id -u)" -ne 0 ]; then die "dockerd is not running and starting it needs root"; fi
    if ! pgrep -x dockerd >/dev/null; then
        echo "docker-setup: starting dockerd (log: $LOG)"
        # setsid + nohup: the daemon outlives this script and the CI step that ran it.
        setsid nohup dockerd --host "unix://$SOCK" >>"$LOG" 2>&1 </dev/null &
    fi
    for _ in $(seq 1 60); do
        daemon_up && break
        sleep 0.5
    done
    daemon_up || { tail -n 30 "$LOG" >&2 || true; die "dockerd did not answer on $SOCK within 30 s (log above: $LOG)"; }
fi
echo "docker-setup: dockerd answers, API $(docker version --format '{{.Server.APIVersion}}')"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "docker-setup: image $IMAGE present"
    exit 0
fi

BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || die "busybox not found: apt-get install busybox-static"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || ldd "$BUSYBOX" 2>&1 | grep -q 'not a dynamic' \
    || die "$BUSYBOX is not statically linked: apt-get install busybox-static"

ROOTFS=$(mktemp -d /tmp/isotest-busybox-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,home}
chmod 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
# --install runs inside the rootfs so the symlinks point at /bin/busybox of the image, not the host.
chroot "$ROOTFS" /bin/busybox --install -s
cat >"$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$ROOTFS/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
echo "docker-setup: built $IMAGE"
