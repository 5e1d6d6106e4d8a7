#!/usr/bin/env bash
# How long a TCP stream over the virtual network stalls when its path dies silently (BENCHMARKS.md,
# "Failover"). Root; real `wow run` processes in the namespaces of Tests/Scripts/netns-topology.sh, default
# liveness (15 s / 30 s), secured, with TUN devices:
#
#   sudo Scripts/failover-time.sh WOW RUNS                      # site1 (port-restricted NAT) streams to boot
#   sudo DIRECTION=to-site Scripts/failover-time.sh WOW RUNS    # boot streams to site1
#   sudo FAILOVER_MS=0 Scripts/failover-time.sh WOW RUNS        # without failover: liveness alone
#
# boot (198.18.0.1, 100.64.0.1) listens on udp 4000 and tcp 4001; site1 (100.64.0.2, behind wowt-nat1) lists
# both as bootstrap URIs and links over udp. Each run starts both nodes, starts a checksummed stream
# (Tests/Scripts/tcp-stream.py, 2 MB/s, 24 MB), cuts every UDP datagram at site1's NAT 3 s into it, and prints
# the stream's longest pause (s), whether every byte arrived intact, and the transport each end holds after.
# Removes what it made.
set -uo pipefail
WOW=$1; RUNS=$2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$ROOT/Tests/Scripts/netns-topology.sh
STREAM=$ROOT/Tests/Scripts/tcp-stream.py
D=$(mktemp -d /tmp/wow-failover-time.XXXX)
trap 'bash $T down >/dev/null 2>&1; rm -rf "$D"' EXIT
bash $T down >/dev/null 2>&1; bash $T up boot site1 >/dev/null
cd "$D"; $WOW ca init --name ft --dir "$D" >/dev/null
declare -A VIP=([boot]=100.64.0.1 [site1]=100.64.0.2)
for n in boot site1; do
  $WOW keygen --out "$D/$n.key" >/dev/null
  $WOW cert issue --ca-key "$D/ca.key" --node-key "$D/$n.key" --name $n --vip ${VIP[$n]} --out "$D/$n.crt" >/dev/null
done
common() {
  cat <<Y
security: { ca: $D/ca.crt, certificate: $D/$1.crt, key: $D/$1.key }
virtual_network: { device: wow0 }
liveness: { failover_after_ms: ${FAILOVER_MS:-1000} }
Y
}
{ echo "node: { name: boot }"; common boot; cat <<Y
transports:
  - { scheme: udp, settings: { listen: "198.18.0.1:4000" } }
  - { scheme: tcp, settings: { listen: "198.18.0.1:4001" } }
Y
} > boot.yml
{ echo "node: { name: site1 }"; common site1; cat <<Y
bootstrap: ["udp://198.18.0.1:4000", "tcp://198.18.0.1:4001"]
transports:
  - { scheme: udp, settings: { listen: "0.0.0.0:4000" } }
  - { scheme: tcp, settings: { listen: "0.0.0.0:4001" } }
Y
} > site1.yml
SENDER=site1; RECEIVER=boot
[[ ${DIRECTION:-from-site} == to-site ]] && { SENDER=boot; RECEIVER=site1; }
transport() { # NODE: the transport of its connection
  $WOW status --control "$D/$1.sock" --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(sorted({c["transport"] for c in d["connections"]})) or "none")' 2>/dev/null
}
for i in $(seq "$RUNS"); do
  rm -f "$D"/*.sock "$D"/received.json* "$D"/sent.json
  ip netns exec wowt-boot $WOW run --config boot.yml --control "$D/boot.sock" >"$D/boot.log" 2>&1 & BP=$!
  sleep 0.5
  ip netns exec wowt-site1 $WOW run --config site1.yml --control "$D/site1.sock" >"$D/site1.log" 2>&1 & SP=$!
  for _ in $(seq 100); do [[ $(transport site1) == udp ]] && break; sleep 0.1; done
  ip netns exec wowt-$RECEIVER python3 "$STREAM" receive --listen ${VIP[$RECEIVER]}:5001 --result "$D/received.json" & RP=$!
  for _ in $(seq 50); do [[ -e $D/received.json.listening ]] && break; sleep 0.1; done
  ip netns exec wowt-$SENDER python3 "$STREAM" send --to ${VIP[$RECEIVER]}:5001 --bytes $((24 << 20)) --rate $((2 << 20)) --result "$D/sent.json" & XP=$!
  sleep 3
  ip netns exec wowt-nat1 iptables -I FORWARD 1 -p udp -j DROP
  for _ in $(seq 900); do [[ -e $D/received.json && -e $D/sent.json ]] && break; sleep 0.1; done
  python3 - "$D" "$(transport site1)" "$(transport boot)" <<'P'
import json, sys
d = sys.argv[1]
try:
    r = json.load(open(d + "/received.json")); s = json.load(open(d + "/sent.json"))
    intact = r["bytes"] == s["bytes"] and r["sha256"] == s["sha256"]
    print(f"longest pause {r['longest_gap_s']:.2f} s, {r['bytes']} bytes, intact: {intact}; site1 on {sys.argv[2]}, boot on {sys.argv[3]}")
except Exception as e:
    print(f"the stream did not finish: {e}")
P
  kill $XP $RP $SP $BP 2>/dev/null; wait $XP $RP $SP $BP 2>/dev/null
  ip netns exec wowt-nat1 iptables -D FORWARD -p udp -j DROP
  ip netns exec wowt-nat1 conntrack -F >/dev/null 2>&1 || true
  sleep 0.5
done
