# Sets up the prototype's DNAT row: a netns with a veth (MTU 65535), 127.0.0.1:39001 → 10.251.0.2:7000, SNAT to
# the host end, route_localnet on it. Run ./relay-proto serveany 7000 inside (ip netns exec pfw-proto ...).
# Teardown: nft delete table ip pfwproto; ip netns del pfw-proto (the veth goes with it).
set -e
ip netns add pfw-proto
ip link add pfwh0 type veth peer name pfwc0 netns pfw-proto
ip link set pfwh0 mtu 65535 up
ip -n pfw-proto link set pfwc0 mtu 65535 up
ip -n pfw-proto link set lo up
ip addr add 10.251.0.1/30 dev pfwh0
ip -n pfw-proto addr add 10.251.0.2/30 dev pfwc0
ip -n pfw-proto route add default via 10.251.0.1
sysctl -qw net.ipv4.conf.pfwh0.route_localnet=1
nft -f - <<'NFT'
table ip pfwproto {
  chain out { type nat hook output priority -100; ip daddr 127.0.0.1 tcp dport 39001 dnat to 10.251.0.2:7000; }
  chain post { type nat hook postrouting priority 100; oifname "pfwh0" ip saddr 127.0.0.1 snat to 10.251.0.1; }
}
NFT
