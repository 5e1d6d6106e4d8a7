#!/bin/bash
# IPv6 over WOW against IPv4 over WOW and the bare veth (BENCHMARKS.md, "IPv6 virtual addresses"). Needs root,
# iperf3 and a release build (swift build -c release). Two namespaces on a veth (198.18.50.1/.2), two secured
# dual-stack WOW nodes (100.64.0.1/2 and fd77:6f77::1/2, MTU 1280 or $MTU); one iperf3 TCP stream over the
# veth, over WOW's IPv4 and over WOW's IPv6, alternated, DUR seconds each (8), RUNS rounds (3), Mbit/s.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
W=${WOW_BINARY:-$ROOT/.build/release/wow}
D=${WORK:-/tmp/wow-ipv6-bench}; mkdir -p $D
DUR=${DUR:-8}; RUNS=${RUNS:-3}
cleanup() { [[ -n "${A:-}" ]] && kill $A 2>/dev/null; [[ -n "${B:-}" ]] && kill $B 2>/dev/null; sleep 0.5; ip netns del v6a 2>/dev/null; ip netns del v6b 2>/dev/null; }
trap cleanup EXIT
cleanup
ip netns add v6a; ip netns add v6b
ip link add v6va type veth peer name v6vb
ip link set v6va netns v6a; ip link set v6vb netns v6b
ip -n v6a addr add 198.18.50.1/24 dev v6va; ip -n v6b addr add 198.18.50.2/24 dev v6vb
for n in v6a v6b; do ip -n $n link set lo up; done
ip -n v6a link set v6va up; ip -n v6b link set v6vb up
rm -rf $D/lab; mkdir -p $D/lab; cd $D/lab
$W ca init --name v6 --dir . >/dev/null
for x in a b; do $W keygen --out $x.key >/dev/null; done
$W cert issue --ca-key ca.key --node-key a.key --name a --vip 100.64.0.1 --vip fd77:6f77::1 --out a.crt >/dev/null
$W cert issue --ca-key ca.key --node-key b.key --name b --vip 100.64.0.2 --vip fd77:6f77::2 --out b.crt >/dev/null
cat > $D/na.yml <<Y
node: { name: a }
security: { ca: $D/lab/ca.crt, certificate: $D/lab/a.crt, key: $D/lab/a.key }
transports: [ { scheme: udp, settings: { listen: "198.18.50.1:4000" } } ]
virtual_network: { device: wow0, mtu: ${MTU:-1280} }
Y
cat > $D/nb.yml <<Y
node: { name: b }
security: { ca: $D/lab/ca.crt, certificate: $D/lab/b.crt, key: $D/lab/b.key }
bootstrap: [ "udp://198.18.50.1:4000" ]
transports: [ { scheme: udp, settings: { listen: "198.18.50.2:4000" } } ]
virtual_network: { device: wow0, mtu: ${MTU:-1280} }
Y
ip netns exec v6a $W run --config $D/na.yml --control $D/a.sock --log-level error > $D/a.log 2>&1 &
A=$!
sleep 1
ip netns exec v6b $W run --config $D/nb.yml --control $D/b.sock --log-level error > $D/b.log 2>&1 &
B=$!
for i in $(seq 1 40); do ip netns exec v6b ping -6 -c1 -W1 fd77:6f77::1 >/dev/null 2>&1 && break; sleep 0.5; done
ip netns exec v6a iperf3 -s -D -p 5201 >/dev/null 2>&1
sleep 1
run() { ip netns exec v6b iperf3 -c $1 -t $DUR -J 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["end"]["sum_received"]["bits_per_second"]/1e6))'; }
for r in $(seq 1 $RUNS); do
  echo "round $r: veth $(run 198.18.50.1) wow-v4 $(run 100.64.0.1) wow-v6 $(run fd77:6f77::1)"
done
echo "rtt v4: $(ip netns exec v6b ping -c 20 -i 0.05 -q 100.64.0.1 | tail -1)"
echo "rtt v6: $(ip netns exec v6b ping -6 -c 20 -i 0.05 -q fd77:6f77::1 | tail -1)"
ip netns exec v6a pkill -x iperf3
