#!/usr/bin/env bash
# Prepares a Docker Engine for the Docker backend tests. Idempotent: run it as often as you like.
#   1. makes a CA, a server and a client certificate for loopback TLS (in $TLS_DIR) unless present;
#   2. starts dockerd (Debian docker.io) in the background unless a daemon already answers, on the unix
#      socket and on tcp://127.0.0.1:2376 with mutual TLS (the TLS tests' daemon: a real one);
#   3. waits up to 30 s for it;
#   4. builds the local image isotest/busybox:latest from busybox-static (there is no Docker Hub here).
# Environment: DOCKERD_LOG (default /tmp/isotest-dockerd.log), ISOTEST_DOCKER_IMAGE (default isotest/busybox:latest).
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=${DOCKERD_LOG:-/tmp/isotest-dockerd.log}
IMAGE=${ISOTEST_DOCKER_IMAGE:-isotest/busybox:latest}
# What DOCKER_CERT_PATH would name for a client: ca.pem, cert.pem, key.pem (and the server's pair).
TLS_DIR=${ISOTEST_DOCKER_TLS_DIR:-/etc/isotest/docker-tls}
TLS_PORT=2376
PIDFILE=/run/isotest-dockerd.pid
# The newer docker CLI in /usr/local/bin defaults to an API newer than Debian's daemon (1.41).
export DOCKER_API_VERSION=${DOCKER_API_VERSION:-1.41}
unset DOCKER_HOST

die() { echo "docker-setup: $*" >&2; exit 1; }

command -v dockerd >/dev/null || die "dockerd not found: apt-get install docker.io"
command -v docker >/dev/null || die "docker CLI not found: apt-get install docker.io"

daemon_up() { docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

make_tls() {
    [ -f "$TLS_DIR/key.pem" ] && [ -f "$TLS_DIR/server-key.pem" ] && return 0
    command -v openssl >/dev/null || die "openssl not found: apt-get install openssl"
    mkdir -p "$TLS_DIR"
    local t
    t=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=isotest test CA" \
        -keyout "$t/ca-key.pem" -out "$TLS_DIR/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$TLS_DIR/server-key.pem" -out "$t/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$t/server.ext"
    openssl x509 -req -in "$t/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial \
        -days 3650 -extfile "$t/server.ext" -out "$TLS_DIR/server-cert.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=isotest client" -keyout "$TLS_DIR/key.pem" -out "$t/client.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > "$t/client.ext"
    openssl x509 -req -in "$t/client.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial \
        -days 3650 -extfile "$t/client.ext" -out "$TLS_DIR/cert.pem" 2>/dev/null
    rm -rf "$t" "$TLS_DIR/ca.srl"                # the CA's key is not kept: nothing more is ever signed
    # The client key is root's alone: whoever holds it commands dockerd, which is root on this machine.
    chmod 0644 "$TLS_DIR/ca.pem" "$TLS_DIR/cert.pem" "$TLS_DIR/server-cert.pem"
    chmod 0600 "$TLS_DIR/key.pem" "$TLS_DIR/server-key.pem"
    echo "docker-setup: made test TLS certificates in $TLS_DIR"
}

tls_up() {
    docker --tlsverify --tlscacert "$TLS_DIR/ca.pem" --tlscert "$TLS_DIR/cert.pem" --tlskey "$TLS_DIR/key.pem" \
        -H "tcp://127.0.0.1:$TLS_PORT" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1
}

start_dockerd() {
    echo "docker-setup: starting dockerd (log: $LOG)"
    # setsid + nohup: the daemon outlives this script and the CI step that ran it.
    setsid nohup dockerd --host "unix://$SOCK" --host "tcp://127.0.0.1:$TLS_PORT" --pidfile "$PIDFILE" \
        --tlsverify --tlscacert "$TLS_DIR/ca.pem" --tlscert "$TLS_DIR/server-cert.pem" --tlskey "$TLS_DIR/server-key.pem" \
        >>"$LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        daemon_up && break
        sleep 0.5
    done
    daemon_up || { tail -n 30 "$LOG" >&2 || true; die "dockerd did not answer on $SOCK within 30 s (log above: $LOG)"; }
}

if [ "$(id -u)" -eq 0 ]; then
    make_tls
fi
if ! daemon_up; then
    if [ "$(id -u)" -ne 0 ]; then die "dockerd is not running and starting it needs root"; fi
    if pgrep -x dockerd >/dev/null; then
        for _ in $(seq 1 60); do daemon_up && break; sleep 0.5; done   # one that is still starting
        daemon_up || die "a dockerd runs but does not answer on $SOCK within 30 s: stop it or fix it (log: $LOG)"
    else
        start_dockerd
    fi
elif ! tls_up; then
    # A daemon this script started earlier, without the TLS listener: start it again with it. A daemon
    # started some other way (systemd) is left alone; only the TLS tests need the listener.
    if [ "$(id -u)" -eq 0 ] && { [ -f "$PIDFILE" ] || [ "$(ps -o args= -C dockerd | head -1)" = "dockerd --host unix://$SOCK" ]; }; then
        echo "docker-setup: restarting dockerd with the TLS listener on 127.0.0.1:$TLS_PORT"
        pkill -x dockerd
        for _ in $(seq 1 60); do pgrep -x dockerd >/dev/null || break; sleep 0.5; done
        start_dockerd
    else
        echo "docker-setup: warning: dockerd does not listen on tcp://127.0.0.1:$TLS_PORT with TLS; the Docker TLS tests will fail" >&2
    fi
fi
tls_up && echo "docker-setup: dockerd answers with mutual TLS on tcp://127.0.0.1:$TLS_PORT (certificates: $TLS_DIR)"
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
