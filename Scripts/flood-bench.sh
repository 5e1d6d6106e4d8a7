#!/usr/bin/env bash
# What a flood costs a member (BENCHMARKS.md, "Floods"). Root; real `wow run` processes in the namespaces of
# Tests/Scripts/netns-topology.sh, secured, with TUN devices:
#
#   sudo [TRANSPORT=udp|tcp|tls] Scripts/flood-bench.sh WOW [SECONDS] [PHASES]
#
# boot (198.18.0.1, 100.64.0.1) listens on TRANSPORT (udp 4000, the default; tcp 4001; tls 443); site1
# (100.64.0.2, behind wowt-nat1) links to it over the same, and with udp its first handshake init is captured on
# the way (a genuine init, for the replay phase). PHASES (default: udp "none busy random init replay", tcp and
# tls "none busy connections"): no flood; busy, one process spinning on a core and sending nothing (what the
# machine has left when an attacker takes a core); random bytes; init-like datagrams (a genuine init's first
# 49 bytes, so that the layout checks pass, and random bytes); the captured init replayed; connections, TCP
# connections that never send a byte, from 8 addresses, 4,000 at once (Scripts/tcp-flood.py). The datagram floods
# come from one process in wowt-pub (Scripts/udp-flood.py, a raw socket) with forged sources in 198.18.128.0/17.
# In each phase: site1 pings boot's virtual IP every 10 ms for SECONDS (default 10), then runs one TCP stream to
# it (iperf3) for SECONDS, then a fresh site2 (100.64.0.3, behind wowt-nat2) joins through boot and the time to
# its first ping answer is taken. One table row per phase: the flood's rate, ping loss and RTT (median, p99),
# TCP Mbit/s, the join's seconds, boot's CPU share and its UDP sockets' receive-buffer drops, and after the
# phase boot's RSS, open fds and TCP connections on its port, its `not_admitted` drops of strangers and what its
# transport dropped (`transport_drops` of `wow status`: udp `not_admitted` and `fragment_*`, tcp/tls `inbound_limit`).
# STRANGERS=N sets boot's udp `strangers_per_second` (its default without). SPLIT=1 gives the attacker a core
# of its own, as when it is another machine: the flooder (and the busy spinner) run on CPU 1, everything else (nodes, ping, iperf3) on CPU 0; the kernel's work of carrying the flood
# to boot's socket then runs mostly on CPU 1 too (a veth delivers on the sender's core), which a real NIC would
# put on the victim's. Removes what it made.
set -uo pipefail
WOW=$1; SECS=${2:-10}
TRANSPORT=${TRANSPORT:-udp}
case $TRANSPORT in
  udp) PORT=4000; PHASES=${3:-none busy random init replay} ;;
  tcp) PORT=4001; PHASES=${3:-none busy connections} ;;
  tls) PORT=443; PHASES=${3:-none busy connections} ;;
  *) echo "flood-bench.sh: TRANSPORT is udp, tcp or tls" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$ROOT/Tests/Scripts/netns-topology.sh
FLOOD=$ROOT/Scripts/udp-flood.py
CONNECTIONS=$ROOT/Scripts/tcp-flood.py
D=$(mktemp -d /tmp/wow-flood-bench.XXXX)
PIDS=()
MAIN=$BASHPID
# Only the script itself cleans up (not a subshell that exits).
cleanup() { [[ $BASHPID == "$MAIN" ]] || return 0; kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; bash $T down >/dev/null 2>&1; rm -rf "$D"; }
trap cleanup EXIT
ATTACKER=()
if [[ ${SPLIT:-0} == 1 ]]; then
  (( $(nproc) >= 2 )) || { echo "flood-bench.sh: SPLIT=1 needs 2 CPUs" >&2; exit 2; }
  taskset -pc 0 $$ >/dev/null; ATTACKER=(taskset -c 1)
fi
bash $T down >/dev/null 2>&1; bash $T up boot pub site1 site2 >/dev/null
cd "$D"; $WOW ca init --name fb --dir "$D" >/dev/null
declare -A VIP=([boot]=100.64.0.1 [site1]=100.64.0.2 [site2]=100.64.0.3)
for n in boot site1 site2; do
  $WOW keygen --out "$D/$n.key" >/dev/null
  $WOW cert issue --ca-key "$D/ca.key" --node-key "$D/$n.key" --name $n --vip ${VIP[$n]} --out "$D/$n.crt" >/dev/null
done
cat > boot.yml <<Y
node: { name: boot }
security: { ca: $D/ca.crt, certificate: $D/boot.crt, key: $D/boot.key }
virtual_network: { device: wow0 }
transports:
  - { scheme: $TRANSPORT, settings: { listen: "198.18.0.1:$PORT"$([[ -n ${STRANGERS:-} ]] && echo ", strangers_per_second: $STRANGERS") } }
Y
for n in site1 site2; do
  cat > $n.yml <<Y
node: { name: $n }
security: { ca: $D/ca.crt, certificate: $D/$n.crt, key: $D/$n.key }
virtual_network: { device: wow0 }
bootstrap: ["$TRANSPORT://198.18.0.1:$PORT"]
transports:
  - { scheme: $TRANSPORT, settings: { listen: "0.0.0.0:$PORT" } }
Y
done
# Forged sources arrive on the WAN router's port toward pub: let it and boot take them.
for ns in wowt-wan wowt-boot; do
  ip netns exec $ns sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  for i in $(ip netns exec $ns ls /proc/sys/net/ipv4/conf); do ip netns exec $ns sysctl -qw net.ipv4.conf.$i.rp_filter=0; done
done
ip netns exec wowt-boot $WOW run --config boot.yml --control "$D/boot.sock" --log-level error >"$D/boot.log" 2>&1 & BP=$!
PIDS+=($BP)
CP=""
[[ $TRANSPORT == udp ]] && { ip netns exec wowt-boot python3 "$FLOOD" --capture "$D/init.bin" --port 4000 --seconds 15 >"$D/capture.log" 2>&1 & CP=$!; }
sleep 0.5
ip netns exec wowt-site1 $WOW run --config site1.yml --control "$D/site1.sock" --log-level error >"$D/site1.log" 2>&1 & SP=$!
PIDS+=($SP)
for _ in $(seq 100); do ip netns exec wowt-site1 ping -c 1 -W 0.2 100.64.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
if [[ -n $CP ]]; then
  wait $CP || { echo "flood-bench.sh: no init of site1 captured" >&2; cat "$D/capture.log" >&2; exit 1; }
fi
# The connection flood's addresses: 198.18.64.0-7 on wowt-pub, routed back to it.
ip -n wowt-wan route add 198.18.64.0/29 dev w-pub
for i in $(seq 0 7); do ip -n wowt-pub addr add 198.18.64.$i/32 dev eth0; done
ip netns exec wowt-boot iperf3 -s -B 100.64.0.1 -D --logfile "$D/iperf-server.log" --pidfile "$D/iperf.pid"
sleep 0.3; PIDS+=($(cat "$D/iperf.pid"))

rss() { awk '/VmRSS/ {print $2 / 1024}' /proc/$BP/status; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$BP/stat; }
rcvbuf_errors() { ip netns exec wowt-boot awk '/^Udp:/ && $2 ~ /^[0-9]/ {print $6}' /proc/net/snmp; }
# boot's drops of strangers (the node's `not_admitted`) and what its transport dropped (`wow status` JSON).
dropped() {
  $WOW status --control "$D/boot.sock" --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
transport = "; ".join(f"{scheme} " + " ".join(f"{reason}={count:,}" for reason, count in sorted(drops.items()))
                      for scheme, drops in sorted(s.get("transport_drops", {}).items()))
print("{:,}".format(s.get("drops", {}).get("not_admitted", 0)) + (f"; {transport}" if transport else ""))' 2>/dev/null || echo "?"
}
# boot's open file descriptors and TCP connections on its port, at the end of a phase.
held() { echo "$(ls /proc/$BP/fd | wc -l) / $(ip netns exec wowt-boot ss -Htn state established "( sport = :$PORT )" | wc -l)"; }
# join: seconds from a fresh site2's start to its first ping answer from boot's virtual IP (at most 20 s).
join() {
  local start end pid
  start=$(date +%s.%N)
  ip netns exec wowt-site2 $WOW run --config site2.yml --control "$D/site2.sock" --log-level error >>"$D/site2.log" 2>&1 & pid=$!
  end=""
  for _ in $(seq 200); do
    if ip netns exec wowt-site2 ping -c 1 -W 0.1 100.64.0.1 >/dev/null 2>&1; then end=$(date +%s.%N); break; fi
  done
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  if [[ -n $end ]]; then python3 -c "print(f'{$end - $start:.2f}')"; else echo "> 20"; fi
}

echo "boot RSS at start: $(rss) MB; transport $TRANSPORT$([[ -f $D/init.bin ]] && echo "; init captured: $(stat -c %s "$D/init.bin") bytes")"
echo "| phase | flood | ping loss | RTT median ms | RTT p99 ms | TCP Mbit/s | join s | boot CPU | socket drops | boot RSS after, MB | boot fds / TCP connections | \`not_admitted\`; transport drops |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for phase in $PHASES; do
  FP=""
  case $phase in
    none) ;;
    busy) ip netns exec wowt-pub "${ATTACKER[@]}" python3 -c 'while True: pass' & FP=$! ;;
    connections)
      ip netns exec wowt-pub "${ATTACKER[@]}" python3 "$CONNECTIONS" --to 198.18.0.1:$PORT --sources 198.18.64.0/29 \
        --connections 4000 --seconds 600 --result "$D/flood.json" >/dev/null & FP=$! ;;
    *)
      ip netns exec wowt-pub "${ATTACKER[@]}" python3 "$FLOOD" --to 198.18.0.1:4000 --kind $phase --payload "$D/init.bin" \
        --seconds 600 --result "$D/flood.json" >/dev/null & FP=$! ;;
  esac
  [[ -n $FP ]] && sleep 1
  ticks=$(cpu_ticks); errors=$(rcvbuf_errors); t0=$(date +%s.%N)
  ip netns exec wowt-site1 ping -i 0.01 -c $((SECS * 100)) -W 1 100.64.0.1 > "$D/ping.txt" 2>&1
  ip netns exec wowt-site1 iperf3 -c 100.64.0.1 -t $SECS -J > "$D/iperf.json" 2>&1
  join > "$D/join.txt"; joined=$(cat "$D/join.txt")
  t1=$(date +%s.%N); ticks=$(( $(cpu_ticks) - ticks )); errors=$(( $(rcvbuf_errors) - errors ))
  [[ -n $FP ]] && { kill -TERM $FP; wait $FP; }
  holding=$(held)
  python3 - "$D" "$phase" "$(rss)" "$(dropped)" "$joined" "$ticks" "$(getconf CLK_TCK)" "$t0" "$t1" "$errors" "$holding" <<'P'
import json, re, sys, statistics
d, phase, rss, dropped, joined, ticks, hz, t0, t1, errors, holding = sys.argv[1:12]
text = open(d + "/ping.txt").read()
rtts = sorted(float(x) for x in re.findall(r"time=([0-9.]+)", text))
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
sent, got = int(m.group(1)), int(m.group(2))
rate = "-"
if phase == "busy":
    rate = "one core spinning"
elif phase == "connections":
    f = json.load(open(d + "/flood.json"))
    rate = f"{f['most_open']:,} open at most, {f['opened'] / f['seconds']:,.0f} opened/s"
elif phase != "none":
    f = json.load(open(d + "/flood.json")); rate = f"{f['sent'] / f['seconds']:,.0f}/s"
try:
    tcp = f"{json.load(open(d + '/iperf.json'))['end']['sum_received']['bits_per_second'] / 1e6:,.0f}"
except Exception:
    tcp = "failed"
p99 = rtts[max(0, int(len(rtts) * 0.99) - 1)] if rtts else float("nan")
median = statistics.median(rtts) if rtts else float("nan")
cpu = int(ticks) / int(hz) / (float(t1) - float(t0))
print(f"| {phase} | {rate} | {100 * (sent - got) / sent:.1f}% of {sent} | {median:.3f} | {p99:.3f} | {tcp} | {joined} "
      f"| {100 * cpu:.0f}% | {int(errors):,} | {float(rss):.1f} | {holding} | {dropped} |")
P
done
