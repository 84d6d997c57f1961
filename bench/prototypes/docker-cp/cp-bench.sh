#!/bin/bash
# docker cp through isotest serve, root or rootless (run as the user; rootless set ISOTEST_CGROUP_PARENT and XDG_RUNTIME_DIR):
# 500 files of 4 KiB into a 0700 directory of uid 999 inside a host-root container, then out as a tar, 5 rounds.
# Needs a Release build (dotnet build -c Release) and the docker CLI. Figures: bench/results/findings.md ("docker cp rootless").
set -eu
cli=$(cd "$(dirname "$0")/../../.." && pwd)/src/IsoTest.Cli/bin/Release/net10.0/IsoTest.Cli.dll
sock=/tmp/isoserve-$(id -u).sock
work=$(mktemp -d /tmp/isotest-cpbench-XXXXXX)
dotnet $cli serve -H unix://$sock > $work/serve.log 2>&1 &
serve=$!
trap 'docker rm -f ${ctr:-none} >/dev/null 2>&1 || true; kill $serve; wait $serve 2>/dev/null; rm -rf $work' EXIT
export DOCKER_HOST=unix://$sock
for i in $(seq 50); do [ -S $sock ] && break; sleep 0.2; done
mkdir $work/src; for i in $(seq 500); do head -c 4096 /dev/urandom > $work/src/f$i; done
ctr=$(docker run -d isotest/host sleep 600)
docker exec $ctr sh -c 'mkdir /tmp/data && chown 999:999 /tmp/data && chmod 700 /tmp/data'
for r in 1 2 3 4 5; do
  a=$(date +%s%N); docker cp $work/src $ctr:/tmp/data/r$r; b=$(date +%s%N)
  docker cp $ctr:/tmp/data/r$r - > $work/out$r.tar; c=$(date +%s%N)
  echo "round $r: in $(( (b-a)/1000000 )) ms, out $(( (c-b)/1000000 )) ms, files out $(tar tf $work/out$r.tar | grep -c /f)"
done
docker exec $ctr sh -c 'stat -c "%u %g %a" /tmp/data/r1 /tmp/data/r1/f1'
