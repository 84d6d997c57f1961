#!/usr/bin/env bash
# Real Debian images without Docker Hub, built once per machine from Debian's apt mirror and cached:
#   isotest/debian:bookworm        debootstrap --variant=minbase bookworm (one layer)
#   isotest/postgres:15-bookworm   that + Debian's postgresql-15 (a second layer), with an entrypoint that
#                                  follows the official postgres image (POSTGRES_USER/PASSWORD/DB, PGDATA),
#                                  USER postgres, EXPOSE 5432, STOPSIGNAL SIGINT, a pg_isready HEALTHCHECK
#   isotest/redis:7-bookworm       the base + Debian's redis-server (7.0), like the official redis image:
#                                  WORKDIR /data, EXPOSE 6379, CMD redis-server reachable from outside the
#                                  container (bind 0.0.0.0, protected mode off), USER redis, a redis-cli HEALTHCHECK
# They go into the local dockerd (Docker backend tests) and into one OCI image layout for the engine, which
# tests import or push to their own loopback docker-registry with skopeo (ImageFixtures.DebianLayout). The
# layout also holds isotest/busybox:latest, which .ci/docker-setup.sh makes in dockerd (the HTTP module's image).
#
# Cache: $ISOTEST_IMAGE_CACHE (default /var/cache/isotest/images):
#   oci/                the OCI layout, its images named docker.io/isotest/debian:bookworm,
#                       docker.io/isotest/postgres:15-bookworm, docker.io/isotest/redis:7-bookworm and
#                       docker.io/isotest/busybox:latest (world-readable: the rootless runs read it)
#   stamp               written last, the hash of this script and the entrypoint: a cache without it, or
#                       made by another version of them, is rebuilt from scratch
# A rebuild replaces the layout and dockerd's tags only when the new ones are complete, so tests that run
# meanwhile keep the old images.
# Idempotent and cheap when cached (a few seconds: the images are re-imported into dockerd from the layout
# only when the daemon lost them). Built from nothing it took 64-95 s here, and up to 374 s with 2 cores
# shared with other builds (debootstrap, apt-get install postgresql-15 and redis-server, skopeo copies):
# budget up to ~6 minutes of CI once. The layout takes ~260 MB, dockerd's copies ~680 MB.
# Environment: ISOTEST_DEBIAN_MIRROR (default http://deb.debian.org/debian), ISOTEST_IMAGE_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${ISOTEST_IMAGE_CACHE:-/var/cache/isotest/images}
MIRROR=${ISOTEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=isotest/debian:bookworm
PG=isotest/postgres:15-bookworm
REDIS=isotest/redis:7-bookworm
BUSYBOX=${ISOTEST_DOCKER_IMAGE:-isotest/busybox:latest}
export DOCKER_API_VERSION=${DOCKER_API_VERSION:-1.41} DOCKER_BUILDKIT=0
unset DOCKER_HOST

die() { echo "images: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and dockerd need it)"
command -v docker >/dev/null || die "docker CLI not found: run .ci/setup.sh"
command -v skopeo >/dev/null || die "skopeo not found: apt-get install skopeo"
docker version >/dev/null 2>&1 || die "dockerd does not answer: run .ci/docker-setup.sh"

have() { docker image inspect "$1" >/dev/null 2>&1; }

# One builder at a time per machine (CI steps and test fixtures may call this at once).
mkdir -p "$CACHE"
exec 9>"$CACHE.lock"
flock 9

version=$(cat .ci/images.sh .ci/images/postgres-entrypoint.sh | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/stamp" 2>/dev/null)" = "$version" ]; then
    # The layout is the source of truth; a daemon reset (new /var/lib/docker) gets the images back from it.
    for image in "$BASE" "$PG" "$REDIS"; do
        have "$image" || { echo "images: loading $image into dockerd from $CACHE/oci"; skopeo copy --quiet "oci:$CACHE/oci:docker.io/$image" "docker-daemon:$image"; }
    done
    echo "images: $BASE, $PG and $REDIS ready (cache: $CACHE)"
    exit 0
fi

command -v debootstrap >/dev/null || {
    echo "images: installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

have "$BUSYBOX" || die "$BUSYBOX is not in dockerd: run .ci/docker-setup.sh first (it makes it from busybox-static)"

started=$(date +%s)
# The images the tags name now, children first: removed once the new ones carry the tags (not before: tests may be using them).
old_ids=$(for image in "$REDIS" "$PG" "$BASE"; do docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true; done)
work=$(mktemp -d /tmp/isotest-images.XXXXXX)
trap 'rm -rf "$work" "$CACHE/oci.new"' EXIT

echo "images: debootstrap --variant=minbase bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
# What Docker's debian images drop: apt's downloaded lists and packages, logs of the build.
rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/var/cache/apt/*.bin "$work/root"/var/cache/apt/archives/*.deb \
    "$work/root"/var/log/*.log "$work/root"/var/log/apt/* "$work/root"/debootstrap
# Built images carry no host identity: docker run bind-mounts its own resolv.conf, hosts and hostname.
: >"$work/root/etc/resolv.conf"
echo "deb $MIRROR bookworm main" >"$work/root/etc/apt/sources.list"
tar -C "$work/root" --numeric-owner --xattrs -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change 'LABEL org.opencontainers.image.source=https://deb.debian.org/debian org.opencontainers.image.version=bookworm' \
    - "$BASE" >/dev/null
rm -rf "$work/root"

echo "images: building $PG (Debian's postgresql-15 over $BASE)"
mkdir -p "$work/pg"
cp .ci/images/postgres-entrypoint.sh "$work/pg/docker-entrypoint.sh"
cat >"$work/pg/Dockerfile" <<DOCKERFILE
FROM $BASE
# Debian's postgresql-common would create and start a cluster at install; the entrypoint makes its own.
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null \\
 && sed -ri 's/#(create_main_cluster) .*\$/\1 = false/' /etc/postgresql-common/createcluster.conf \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/*.log \\
 && install -d -o postgres -g postgres -m 3777 /var/run/postgresql \\
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
USER postgres
WORKDIR /var/lib/postgresql
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=1s --timeout=5s --start-period=30s --retries=30 CMD pg_isready -q -h 127.0.0.1 -p 5432
LABEL org.opencontainers.image.title="PostgreSQL 15 (Debian bookworm)" org.opencontainers.image.vendor=isotest
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
DOCKERFILE
chmod 0755 "$work/pg/docker-entrypoint.sh"
# --network host: the build's apt reaches the mirror the way the host's apt does (proxies, DNS).
docker build --quiet --network host -t "$PG" "$work/pg" >"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; die "docker build of $PG failed (log above)"; }

echo "images: building $REDIS (Debian's redis-server over $BASE)"
mkdir -p "$work/redis"
cat >"$work/redis/Dockerfile" <<DOCKERFILE
FROM $BASE
# policy-rc.d: the package's postinst would start a server in the build container.
RUN printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \\
 && apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
 && rm -rf /usr/sbin/policy-rc.d /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/*.log \\
 && install -d -o redis -g redis -m 0755 /data
USER redis
WORKDIR /data
EXPOSE 6379
# NOAUTH answers too: a server started with --requirepass is up.
HEALTHCHECK --interval=1s --timeout=5s --start-period=10s --retries=30 CMD redis-cli -h 127.0.0.1 -p 6379 ping | grep -qE 'PONG|NOAUTH'
LABEL org.opencontainers.image.title="Redis 7 (Debian bookworm)" org.opencontainers.image.vendor=isotest
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]
DOCKERFILE
docker build --quiet --network host -t "$REDIS" "$work/redis" >"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; die "docker build of $REDIS failed (log above)"; }

echo "images: writing the OCI layout $CACHE/oci"
# Full names as ref names: the engine's import tags them as FromImage("isotest/postgres:15-bookworm") names them.
# PostgreSQL's and Redis's in Docker's manifest and config format (v2s2): converting to OCI's drops the config's
# Healthcheck. Debian's in OCI's (nothing of its config is lost): skopeo reads only OCI manifests back from a layout,
# and the tests push it from here to their registry (rootless too, where dockerd's socket is out of reach).
# Written next to the old layout and swapped in whole: tests that load the old one meanwhile see all of it.
rm -rf "$CACHE/oci.new"
skopeo copy --quiet "docker-daemon:$BASE" "oci:$CACHE/oci.new:docker.io/$BASE"
skopeo copy --quiet --format v2s2 "docker-daemon:$PG" "oci:$CACHE/oci.new:docker.io/$PG"
skopeo copy --quiet --format v2s2 "docker-daemon:$REDIS" "oci:$CACHE/oci.new:docker.io/$REDIS"
skopeo copy --quiet "docker-daemon:$BUSYBOX" "oci:$CACHE/oci.new:docker.io/$BUSYBOX"
chmod -R a+rX "$CACHE/oci.new"
rm -rf "$CACHE/oci.old"
[ ! -e "$CACHE/oci" ] || mv "$CACHE/oci" "$CACHE/oci.old"
mv "$CACHE/oci.new" "$CACHE/oci"
rm -rf "$CACHE/oci.old"
echo "$version" >"$CACHE/stamp"
chmod a+r "$CACHE/stamp"
# What the tags named before this build, now that nothing names them (one still used by a container stays).
for id in $old_ids; do
    docker image inspect --format '{{.RepoTags}}' "$id" 2>/dev/null | grep -q '^\[\]$' && docker rmi "$id" >/dev/null 2>&1 || true
done
echo "images: built $BASE, $PG and $REDIS in $(( $(date +%s) - started )) s (cache: $CACHE)"
