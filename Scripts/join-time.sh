#!/usr/bin/env bash
# How long a firewalled site takes to join (BENCHMARKS.md, "Linking races its URIs"). Root; real `wow run`
# processes in the namespaces of Tests/Scripts/netns-topology.sh, default timers, secured:
#
#   sudo Scripts/join-time.sh WOW RUNS                                   # site3 behind `fw` (only TCP to 443 out)
#   sudo PART=noudp SITENS=wowt-site6 WANT=tcp Scripts/join-time.sh WOW RUNS   # a site that blocks UDP
#
# A bootstrap (wowt-boot, 198.18.0.1) listens on udp 4000, tcp 4001 and tls 443; the site lists all three as
# bootstrap URIs, udp first, as an operator would. Prints, per run, the seconds from starting the site's node
# until it holds a structured connection over WANT (tls) to the bootstrap. Removes what it made.
set -uo pipefail
WOW=$1; RUNS=$2
T=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/Tests/Scripts/netns-topology.sh
D=$(mktemp -d /tmp/wow-join-time.XXXX)
trap 'bash $T down >/dev/null 2>&1; rm -rf "$D"' EXIT
bash $T down >/dev/null 2>&1; bash $T up boot ${PART:-fw} >/dev/null
cd $D; $WOW ca init --name jt --dir $D >/dev/null
for n in boot site3; do $WOW keygen --out $D/$n.key >/dev/null; $WOW cert issue --ca-key $D/ca.key --node-key $D/$n.key --name $n --out $D/$n.crt >/dev/null; done
cat > boot.yml <<Y
node: { name: boot }
security: { ca: $D/ca.crt, certificate: $D/boot.crt, key: $D/boot.key }
transports:
  - { scheme: udp, settings: { listen: "198.18.0.1:4000" } }
  - { scheme: tcp, settings: { listen: "198.18.0.1:4001" } }
  - { scheme: tls, settings: { listen: "198.18.0.1:443" } }
Y
cat > site3.yml <<Y
node: { name: site3 }
security: { ca: $D/ca.crt, certificate: $D/site3.crt, key: $D/site3.key }
bootstrap: ["udp://198.18.0.1:4000", "tcp://198.18.0.1:4001", "tls://198.18.0.1:443"]
transports:
  - { scheme: udp, settings: { listen: "0.0.0.0:4000" } }
  - { scheme: tcp, settings: { listen: "0.0.0.0:4001" } }
  - { scheme: tls, settings: { listen: "0.0.0.0:443" } }
Y
ip netns exec wowt-boot $WOW run --config boot.yml --control $D/boot.sock >/dev/null 2>&1 & BP=$!
sleep 1
for i in $(seq $RUNS); do
  start=$(date +%s.%N)
  ip netns exec ${SITENS:-wowt-site3} $WOW run --config site3.yml --control $D/site3.sock >/dev/null 2>&1 & SP=$!
  while :; do
    if $WOW status --control $D/site3.sock --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(c.get("transport")==sys.argv[1] and any(t.startswith("structured") for t in (c.get("local_types",[])+c.get("remote_types",[]))) for c in d.get("connections",[])) else 1)' ${WANT:-tls} 2>/dev/null; then break; fi
    now=$(date +%s.%N); if (( $(echo "$now - $start > 20" | bc) )); then echo "timeout"; break; fi
    sleep 0.02
  done
  end=$(date +%s.%N); echo "$end - $start" | bc
  kill $SP; wait $SP 2>/dev/null; rm -f $D/site3.sock; sleep 0.5
done
kill $BP; wait $BP 2>/dev/null
