#!/usr/bin/env bash
# What a forged-source UDP flood costs a member (BENCHMARKS.md, "Floods"). Root; real `wow run` processes in the
# namespaces of Tests/Scripts/netns-topology.sh, secured, with TUN devices:
#
#   sudo Scripts/flood-bench.sh WOW [SECONDS]
#
# boot (198.18.0.1, 100.64.0.1) listens on udp 4000; site1 (100.64.0.2, behind wowt-nat1) links to it. For each
# phase (no flood, random bytes, init-like datagrams) site1 pings boot's virtual IP every 10 ms for SECONDS
# (default 10) while the attacker in wowt-pub (Scripts/udp-flood.py, one process) floods boot's udp port from
# forged sources in 198.18.128.0/17. Prints per phase: the flood's rate, ping loss and RTT (median, p99), boot's
# RSS after the phase and the node's `not_admitted` drops. Removes what it made.
set -uo pipefail
WOW=$1; SECS=${2:-10}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$ROOT/Tests/Scripts/netns-topology.sh
FLOOD=$ROOT/Scripts/udp-flood.py
D=$(mktemp -d /tmp/wow-flood-bench.XXXX)
trap 'bash $T down >/dev/null 2>&1; rm -rf "$D"' EXIT
bash $T down >/dev/null 2>&1; bash $T up boot pub site1 >/dev/null
cd "$D"; $WOW ca init --name fb --dir "$D" >/dev/null
declare -A VIP=([boot]=100.64.0.1 [site1]=100.64.0.2)
for n in boot site1; do
  $WOW keygen --out "$D/$n.key" >/dev/null
  $WOW cert issue --ca-key "$D/ca.key" --node-key "$D/$n.key" --name $n --vip ${VIP[$n]} --out "$D/$n.crt" >/dev/null
done
cat > boot.yml <<Y
node: { name: boot }
security: { ca: $D/ca.crt, certificate: $D/boot.crt, key: $D/boot.key }
virtual_network: { device: wow0 }
transports:
  - { scheme: udp, settings: { listen: "198.18.0.1:4000" } }
Y
cat > site1.yml <<Y
node: { name: site1 }
security: { ca: $D/ca.crt, certificate: $D/site1.crt, key: $D/site1.key }
virtual_network: { device: wow0 }
bootstrap: ["udp://198.18.0.1:4000"]
transports:
  - { scheme: udp, settings: { listen: "0.0.0.0:4000" } }
Y
# Forged sources arrive on the WAN router's port toward pub: let it and boot take them.
for ns in wowt-wan wowt-boot; do
  ip netns exec $ns sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  for i in $(ip netns exec $ns ls /proc/sys/net/ipv4/conf); do ip netns exec $ns sysctl -qw net.ipv4.conf.$i.rp_filter=0; done
done
ip netns exec wowt-boot $WOW run --config boot.yml --control "$D/boot.sock" --log-level error >"$D/boot.log" 2>&1 & BP=$!
sleep 0.5
ip netns exec wowt-site1 $WOW run --config site1.yml --control "$D/site1.sock" --log-level error >"$D/site1.log" 2>&1 & SP=$!
for _ in $(seq 100); do ip netns exec wowt-site1 ping -c 1 -W 0.2 100.64.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2 / 1024}' /proc/$BP/status; }
dropped() { $WOW status --control "$D/boot.sock" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("drops", {}).get("not_admitted", 0))' 2>/dev/null || echo "?"; }
echo "boot RSS at start: $(rss) MB"
for phase in none random init; do
  FP=""
  if [[ $phase != none ]]; then
    ip netns exec wowt-pub python3 "$FLOOD" --to 198.18.0.1:4000 --kind $phase --seconds $((SECS + 2)) --result "$D/flood.json" >/dev/null & FP=$!
    sleep 1
  fi
  ip netns exec wowt-site1 ping -i 0.01 -c $((SECS * 100)) -W 1 100.64.0.1 > "$D/ping.txt" 2>&1
  [[ -n $FP ]] && wait $FP
  python3 - "$D" "$phase" "$(rss)" "$(dropped)" <<'P'
import json, re, sys, statistics
d, phase, rss, dropped = sys.argv[1:5]
text = open(d + "/ping.txt").read()
rtts = sorted(float(x) for x in re.findall(r"time=([0-9.]+)", text))
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
sent, got = int(m.group(1)), int(m.group(2))
rate = ""
if phase != "none":
    f = json.load(open(d + "/flood.json")); rate = f"{f['sent'] / f['seconds']:.0f}/s"
p99 = rtts[max(0, int(len(rtts) * 0.99) - 1)] if rtts else float("nan")
print(f"| {phase} | {rate or '-'} | {100 * (sent - got) / sent:.1f}% of {sent} | {statistics.median(rtts) if rtts else float('nan'):.3f} | {p99:.3f} | {float(rss):.1f} | {dropped} |")
P
done
kill $SP $BP 2>/dev/null; wait $SP $BP 2>/dev/null
