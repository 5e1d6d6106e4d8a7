#!/usr/bin/env bash
# What a new conversation loses while its path forms (issue 16: "ssh to a new host hangs"). Root; real
# `wow run` processes with TUN devices in the namespaces of Tests/Scripts/netns-topology.sh, secured:
#
#   sudo Scripts/first-packets.sh WOW RUNS [FROM] [TO]     # default site3 site1; also site2, site4, site6
#
# A bootstrap (wowt-boot, 198.18.0.1: udp 4000, tcp 4001, tls 443, relay), site3 behind `fw` (only TCP to 443
# out; virtual IP 100.64.0.3) and site1 behind a port-restricted NAT (100.64.0.1). Per run: both site nodes
# start fresh, and once both are in the ring (each answers an overlay echo from the bootstrap), FROM pings TO's
# virtual IP 30 times, 0.2 s apart (`ping -i 0.2 -c 30`). Prints how many were answered, the first reply's
# time after the first ping, and the three nodes' drop counters and paths afterwards. Removes what it made.
# SAVE_CA=DIR keeps the authority and the last run's logs there; CA=DIR replays with it; LOG_LEVEL=debug.
set -uo pipefail
WOW=$1; RUNS=$2; FROM=${3:-site3}; TO=${4:-site1}
T=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/Tests/Scripts/netns-topology.sh
D=$(mktemp -d /tmp/wow-first-packets.XXXX)
trap 'bash $T down >/dev/null 2>&1; rm -rf "$D"' EXIT
# Each site's part of the topology: site3 behind `fw` (only TCP 443 out), site6 behind `noudp` (no UDP), site4
# behind a symmetric NAT (`sym`), site1 and site2 behind port-restricted NATs.
declare -A PART=([site1]=site1 [site2]=site2 [site3]=fw [site4]=sym [site6]=noudp)
[ -n "${PART[$FROM]:-}" ] && [ -n "${PART[$TO]:-}" ] && [ "$FROM" != "$TO" ] || { echo "FROM and TO: two of ${!PART[*]}" >&2; exit 2; }
bash $T down >/dev/null 2>&1; bash $T up boot ${PART[$FROM]} ${PART[$TO]} >/dev/null
# CA=DIR reuses the authority in DIR (ca.key, ca.crt): the same network id puts the nodes at the same ring
# addresses again, to replay a run; without it a fresh one is made (and copied to $D/ca.* only).
cd $D
if [ -n "${CA:-}" ]; then cp "$CA"/ca.key "$CA"/ca.crt $D/; else $WOW ca init --name fp --dir $D >/dev/null; fi
[ -n "${SAVE_CA:-}" ] && mkdir -p "$SAVE_CA" && cp $D/ca.key $D/ca.crt "$SAVE_CA"/
[ -n "${LOG_LEVEL:-}" ] && LOGS="--log-level $LOG_LEVEL" || LOGS=""
declare -A VIP=([site1]=100.64.0.1 [site2]=100.64.0.2 [site3]=100.64.0.3 [site4]=100.64.0.4 [site6]=100.64.0.6)
$WOW keygen --out $D/boot.key >/dev/null; $WOW cert issue --ca-key $D/ca.key --node-key $D/boot.key --name boot --out $D/boot.crt >/dev/null
for n in $FROM $TO; do
  $WOW keygen --out $D/$n.key >/dev/null
  $WOW cert issue --ca-key $D/ca.key --node-key $D/$n.key --name $n --vip ${VIP[$n]} --out $D/$n.crt >/dev/null
  cat > $n.yml <<Y
node: { name: $n }
security: { ca: $D/ca.crt, certificate: $D/$n.crt, key: $D/$n.key }
bootstrap: ["udp://198.18.0.1:4000", "tcp://198.18.0.1:4001", "tls://198.18.0.1:443"]
transports:
  - { scheme: udp, settings: { listen: "0.0.0.0:4000" } }
  - { scheme: tcp, settings: { listen: "0.0.0.0:4001" } }
  - { scheme: tls, settings: { listen: "0.0.0.0:443" } }
  - { scheme: relay }
virtual_network: { device: wow0 }
Y
done
cat > boot.yml <<Y
node: { name: boot }
security: { ca: $D/ca.crt, certificate: $D/boot.crt, key: $D/boot.key }
transports:
  - { scheme: udp, settings: { listen: "198.18.0.1:4000" } }
  - { scheme: tcp, settings: { listen: "198.18.0.1:4001" } }
  - { scheme: tls, settings: { listen: "198.18.0.1:443" } }
  - { scheme: relay }
Y
ip netns exec wowt-boot $WOW run --config boot.yml --control $D/boot.sock >$D/boot.log 2>&1 & BP=$!
sleep 1
for i in $(seq $RUNS); do
  ip netns exec wowt-$FROM $WOW run --config $FROM.yml --control $D/$FROM.sock $LOGS >$D/$FROM.log 2>&1 & P1=$!
  ip netns exec wowt-$TO $WOW run --config $TO.yml --control $D/$TO.sock $LOGS >$D/$TO.log 2>&1 & P3=$!
  for n in $FROM $TO; do
    for _ in $(seq 100); do $WOW ping $n -c 1 -W 0.5 --control $D/boot.sock >/dev/null 2>&1 && break; sleep 0.1; done
  done
  OUT=$(ip netns exec wowt-$FROM ping -i 0.2 -c 30 -W 2 ${VIP[$TO]} 2>&1)
  received=$(echo "$OUT" | grep -oE '[0-9]+ received' | grep -oE '[0-9]+')
  first=$(echo "$OUT" | grep -m1 -E 'bytes from' | grep -oE 'icmp_seq=[0-9]+' | grep -oE '[0-9]+')
  unreachable=$(echo "$OUT" | grep -c 'Unreachable')
  echo "run $i: $FROM -> $TO: $received/30 answered, $unreachable unreachable, first answer to ping ${first:-none} (sent $(echo "(${first:-31} - 1) * 0.2" | bc) s after the first)"
  for n in $FROM $TO boot; do
    $WOW status --control $D/$n.sock --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
peers = [(c.get("peer_name"), c["path"]) for c in d["connections"]]
print("   ", sys.argv[1], "drops", d["drops"], "paths", peers)' $n
  done
  [ -n "${SAVE_CA:-}" ] && cp $D/$FROM.log $D/$TO.log $D/boot.log "$SAVE_CA"/
  kill $P1 $P3; wait $P1 $P3 2>/dev/null; rm -f $D/$FROM.sock $D/$TO.sock; sleep 1
done
kill $BP; wait $BP 2>/dev/null
