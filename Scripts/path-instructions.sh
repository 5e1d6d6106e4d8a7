#!/usr/bin/env bash
# Instructions per overlay packet on the node's data path, counted (not timed) under valgrind's callgrind:
# exact and the same from run to run, where `wow bench path`'s times swing 10-30% on a shared host. Compare
# two builds with it before timing them (BENCHMARKS.md, "The node's cost per packet").
#
#   Scripts/path-instructions.sh WOW [CASE]     # CASE: 1 (default), 8, whole or packets (`wow bench path --only`)
#
# Needs valgrind (apt-get install valgrind). Runs `WOW bench path --seconds 0.5 --only CASE` on a copy of WOW
# without its debug info (which valgrind cannot read), then prints, per call, the instructions of the stages
# of sending (the virtual interface's segmenting, the node's send, the secured edge's sealing) and receiving
# (the secured edge, the node, routing and delivery, the virtual interface, the coalescer). Valgrind's CPU has
# no AVX-512, so AES-GCM takes another code path than on this host: compare the stages around it.
set -euo pipefail
WOW=$1; CASE=${2:-1}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ -x "$WOW" ] || { echo "no executable at $WOW" >&2; exit 2; }
D=$(mktemp -d /tmp/wow-path-instructions.XXXX)
trap 'rm -rf "$D"' EXIT
strip -g -o "$D/wow" "$WOW"
valgrind --tool=callgrind --callgrind-out-file="$D/callgrind.out" "$D/wow" bench path --seconds 0.5 --only "$CASE" \
    >"$D/bench.txt" 2>"$D/valgrind.txt" || { cat "$D/valgrind.txt" >&2; exit 1; }
python3 - "$D/callgrind.out" <<'PY'
import collections, re, subprocess, sys
# Inclusive instructions of each function per call, from the costs callgrind records at its call sites.
names, calls, inclusive = {}, collections.Counter(), collections.Counter()
current_callee, pending = None, None
def name(token):
    match = re.match(r'\((\d+)\)(?: (.*))?', token)
    if not match: return token
    if match.group(2): names[match.group(1)] = match.group(2)
    return names.get(match.group(1), match.group(1))
for line in open(sys.argv[1]):
    line = line.rstrip('\n')
    if line.startswith('fn='): name(line[3:])
    elif line.startswith('cfn='): current_callee = name(line[4:])
    elif line.startswith('calls='): pending = int(line[6:].split()[0])
    elif pending is not None and line and (line[0].isdigit() or line[0] in '+-*'):
        parts = line.split()
        calls[current_callee] += pending
        inclusive[current_callee] += int(parts[1])
        pending = None
mangled = list(calls)
demangled = subprocess.run(['swift', 'demangle', '--simplified', '--compact'], input='\n'.join(mangled),
                           capture_output=True, text=True).stdout.split('\n')
readable = dict(zip(mangled, demangled))
# The benchmark's super-segments hold 50 segments (`PathBenchmark.segmentsPerSuper`): the segmenter's calls
# are per super-segment, shown per segment.
stages = [('send: per segment, all of it (from the device on)', 'TCPSegmenter.segments(of:'),
          ('send: the node, one packet to a direct peer', 'Node.send(_:directlyTo:'),
          ('send: encoded into its buffer', 'RoutedPacket.encodedMessage('),
          ('send: sealed by the secured edge', 'SecuredEdge.send('),
          ('receive: the secured edge, all of it', 'SecuredEdge.edge(_:didReceive:)'),
          ('receive: opened', 'SecureChannel.receive(_:_:random:openingInto:)'),
          ('receive: the node', 'Node.handleEdgeMessage('),
          ('receive: routed and delivered', 'Node.route('),
          ('receive: the virtual interface', 'VirtualInterface.receiveFromOverlay('),
          ('receive: the coalescer', 'TCPCoalescer.add(')]
print(f"{'stage':55} {'instructions/call':>18} {'calls':>8}")
for label, pattern in stages:
    found = [f for f in mangled if pattern in readable.get(f, '') and "'2" not in readable.get(f, '')
             and not readable.get(f, '').startswith(('partial apply', 'protocol witness')) and calls[f] >= 100]
    for f in sorted(found, key=lambda f: -calls[f])[:1]:
        per = 50 if pattern.startswith('TCPSegmenter') else 1
        print(f"{label:55} {inclusive[f] / calls[f] / per:18.0f} {calls[f] * per:8d}")
PY
