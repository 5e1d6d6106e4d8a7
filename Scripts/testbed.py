#!/usr/bin/env python3
"""The WOW testbed on one machine (docs/testbed.md): the 2006 paper's testbed rebuilt in Linux network
namespaces, every node a real `wow run` process, secured with credentials the CLI makes. Needs root, `ip`,
`iptables`, `ping` and /dev/net/tun.

    sudo Scripts/testbed.py up [--routers 118] [--workstations 33]   build it and start every node
    sudo Scripts/testbed.py run join [--trials 300]                  fresh workstations join, timed
    sudo Scripts/testbed.py run migrate                              a workstation moves to another domain
    sudo Scripts/testbed.py run churn [--minutes 5]                  routers are killed and restarted
    sudo Scripts/testbed.py measure                                  RSS, open fds and idle CPU of every node
    sudo Scripts/testbed.py status                                   who runs, the ring, per-node neighbours
    sudo Scripts/testbed.py report [--out docs]                      docs/testbed.md and its SVG plots
    sudo Scripts/testbed.py down                                     stop every node, delete every namespace

The shape (every namespace is named `wowtb-*`, underlay addresses are in 198.18.0.0/15, virtual ones in
100.64.0.0/10):

    wowtb-wan        the public "internet": a router with one veth port per namespace below
    wowtb-pub1..4    the public router nodes (118 by default, spread over up to 4 namespaces), each its own
                     process with its own address 198.18.(10+N).M listening on udp 4000, tcp 4001, tls 443;
                     the first node of pub1 and of pub2 are the bootstraps everyone lists
    wowtb-d1, -d2    port-restricted cone NATs (MASQUERADE; in only what belongs to connections from inside)
    wowtb-d3         a symmetric NAT (MASQUERADE --random-fully: a new port for every remote)
    wowtb-d4         a NAT that lets out TCP only (no UDP at all)
    wowtb-d5         a NAT that lets out only TCP to port 443
    wowtb-d6, -d6n   two nested NATs: d6n is a port-restricted NAT on d6's LAN, its hosts behind both
    wowtb-dD-wI      workstation I of domain D (33 by default, round-robin over the domains): a host on its
                     domain's LAN 198.19.D.0/24 (d6: 198.19.16.0/24) running a node with a TUN (wow0), the
                     virtual IP 100.64.D.I and udp port 4100+I (all 4000 with `up --shared-udp-port`)
    wowtb-dD-j       where the join experiment starts its fresh workstations in domain D (100.66.D.K)

State (configs, credentials, logs, control sockets, results) lives in --dir (default /tmp/wow-testbed).
`down` stops the processes it recorded (by PID) and deletes the wowtb-* namespaces (by name). Another prefix
(WOW_TESTBED_PREFIX, e.g. the test suite's `wowtc-`) lets a second, small testbed run beside a big one.
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

PREFIX = os.environ.get("WOW_TESTBED_PREFIX", "wowtb-")
WAN_ROUTER = "198.18.255.254"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Failure(Exception):
    pass


# --- Domains -------------------------------------------------------------------------------------------------

class Domain:
    def __init__(self, number, kind, wan, lan, description):
        self.number, self.kind, self.wan, self.lan, self.description = number, kind, wan, lan, description

    @property
    def router(self):
        return f"{PREFIX}d{self.number}"

    @property
    def lan_router(self):
        """The namespace whose bridge the domain's hosts sit on (the inner NAT in the nested domain)."""
        return f"{PREFIX}d{self.number}n" if self.kind == "nested" else self.router

    @property
    def host_lan(self):
        return "198.19.16" if self.kind == "nested" else self.lan


DOMAINS = [
    Domain(1, "cone", "198.18.2.1", "198.19.1", "port-restricted cone NAT"),
    Domain(2, "cone", "198.18.2.2", "198.19.2", "port-restricted cone NAT"),
    Domain(3, "symmetric", "198.18.2.3", "198.19.3", "symmetric NAT (a new port per remote)"),
    Domain(4, "udp-blocked", "198.18.2.4", "198.19.4", "NAT letting out TCP only (no UDP)"),
    Domain(5, "tcp443", "198.18.2.5", "198.19.5", "NAT letting out only TCP to port 443"),
    Domain(6, "nested", "198.18.2.6", "198.19.6", "two nested port-restricted NATs"),
]
DOMAIN = {d.number: d for d in DOMAINS}


# --- Shell ---------------------------------------------------------------------------------------------------

def run(*argv, check=True, quiet=False):
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise Failure(f"`{' '.join(argv)}` failed ({result.returncode}): {result.stdout.strip()}")
    return result


def nsrun(namespace, *argv, check=True):
    return run("ip", "netns", "exec", namespace, *argv, check=check)


def make_ns(name):
    run("ip", "netns", "add", name)
    run("ip", "-n", name, "link", "set", "lo", "up")


def namespaces():
    out = run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def wan_port(name, addresses, routes):
    """A veth from NAME's eth0 to the WAN router; ADDRESSES (/32) on it; the router routes ROUTES to it."""
    port = "p-" + name[len(PREFIX):]
    run("ip", "-n", f"{PREFIX}wan", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
    run("ip", "-n", f"{PREFIX}wan", "addr", "add", f"{WAN_ROUTER}/32", "dev", port)
    run("ip", "-n", f"{PREFIX}wan", "link", "set", port, "up")
    for route in routes:
        run("ip", "-n", f"{PREFIX}wan", "route", "add", route, "dev", port)
    for address in addresses:
        run("ip", "-n", name, "addr", "add", f"{address}/32", "dev", "eth0")
    run("ip", "-n", name, "link", "set", "eth0", "up")
    run("ip", "-n", name, "route", "add", f"{WAN_ROUTER}/32", "dev", "eth0")
    run("ip", "-n", name, "route", "add", "default", "via", WAN_ROUTER, "dev", "eth0")


def workstation_udp_port(bed, name):
    """The udp port of workstation NAME (dD-wI, or jD-K for the join experiment's): each host behind a NAT has one
    of its own (4100 + I; joiners 4100), or all 4000 with `up --shared-udp-port`. Hosts behind one Linux NAT
    that share a source port make its mapping depend on the destination for all but one of them: the NAT keeps
    4000 for a destination where that is free and gives another port where another host holds it, so the port
    a peer was told of is often not the one the host's packets to that peer leave from, and a punch fails."""
    if bed.state.get("shared_udp_port"):
        return 4000
    return 4100 + (int(name.split("-w")[1]) if "-w" in name else 0)


def attach(router, host, net, octet):
    """HOST's eth0 on ROUTER's LAN bridge br0 with NET.OCTET/24, default route through NET.1."""
    port = f"h{octet}"
    run("ip", "-n", router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host)
    run("ip", "-n", router, "link", "set", port, "master", "br0")
    run("ip", "-n", router, "link", "set", port, "up")
    run("ip", "-n", host, "addr", "add", f"{net}.{octet}/24", "dev", "eth0")
    run("ip", "-n", host, "link", "set", "eth0", "up")
    run("ip", "-n", host, "route", "add", "default", "via", f"{net}.1")


def nat_router(name, lan, masquerade_options=()):
    """NAME does NAT from bridge br0 (LAN.1/24) out of its eth0; lets in only replies (the caller adds what it
    lets out)."""
    nsrun(name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    run("ip", "-n", name, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", name, "addr", "add", f"{lan}.1/24", "dev", "br0")
    run("ip", "-n", name, "link", "set", "br0", "up")
    nsrun(name, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE", *masquerade_options)
    nsrun(name, "iptables", "-P", "FORWARD", "DROP")
    nsrun(name, "iptables", "-A", "FORWARD", "-i", "eth0", "-o", "br0", "-m", "conntrack", "--ctstate",
          "ESTABLISHED,RELATED", "-j", "ACCEPT")
    nsrun(name, "iptables", "-A", "FORWARD", "-i", "br0", "-o", "br0", "-j", "ACCEPT")


def build_domain(d):
    make_ns(d.router)
    wan_port(d.router, [d.wan], [f"{d.wan}/32"])
    nat_router(d.router, d.lan, ["--random-fully"] if d.kind == "symmetric" else [])
    allow = {"udp-blocked": ["-p", "tcp"], "tcp443": ["-p", "tcp", "--dport", "443"]}.get(d.kind, [])
    nsrun(d.router, "iptables", "-A", "FORWARD", "-i", "br0", "-o", "eth0", *allow, "-j", "ACCEPT")
    if d.kind == "nested":
        make_ns(d.lan_router)
        attach(d.router, d.lan_router, d.lan, 2)
        nat_router(d.lan_router, d.host_lan)
        nsrun(d.lan_router, "iptables", "-A", "FORWARD", "-i", "br0", "-o", "eth0", "-j", "ACCEPT")


# --- Nodes ---------------------------------------------------------------------------------------------------

class Testbed:
    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.state_path = os.path.join(self.dir, "state.json")
        self.state = {}
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.state = json.load(f)

    def save(self):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, self.state_path)

    @property
    def wow(self):
        return self.state["wow"]

    @property
    def nodes(self):
        return self.state["routers"] + self.state["workstations"]

    def node(self, name):
        for n in self.nodes:
            if n["name"] == name:
                return n
        raise Failure(f"no node named {name}")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def credentials(self, name, vip=None):
        key, crt = self.path("keys", f"{name}.key"), self.path("keys", f"{name}.crt")
        if not os.path.exists(key):
            run(self.wow, "keygen", "--out", key)
        vips = ["--vip", vip] if vip else []
        run(self.wow, "cert", "issue", "--ca-key", self.path("keys", "ca.key"), "--node-key", key, "--name", name,
            *vips, "--days", "30", "--out", crt, "--force")
        return key, crt

    def bootstrap_uris(self, exclude=None):
        uris = []
        for scheme, port in (("udp", 4000), ("tcp", 4001), ("tls", 443)):
            uris += [f"{scheme}://{ip}:{port}" for ip in self.state["bootstraps"] if ip != exclude]
        return uris

    def write_config(self, name, listen, bootstrap, tun, domain=None, udp_port=4000):
        key, crt = self.path("keys", f"{name}.key"), self.path("keys", f"{name}.crt")
        lines = [
            f"node: {{ name: {name} }}",
            f"security: {{ ca: {self.path('keys', 'ca.crt')}, certificate: {crt}, key: {key} }}",
            "bootstrap: [" + ", ".join(f'"{u}"' for u in bootstrap) + "]",
            "transports:",
            f'  - {{ scheme: udp, settings: {{ listen: "{listen}:{udp_port}" }} }}',
            f'  - {{ scheme: tcp, settings: {{ listen: "{listen}:4001" }} }}',
            f'  - {{ scheme: tls, settings: {{ listen: "{listen}:443" }} }}',
            "  - { scheme: relay }",
        ]
        if tun:
            lines.append("virtual_network: { device: wow0 }")
        if domain is not None and DOMAIN[domain].kind == "nested":
            # What docs/operations.md tells a site behind two NATs: its punches must pass both.
            lines.append("linking: { punch_ttl: 3 }")
        path = self.path("configs", f"{name}.yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self, node):
        """Starts NODE's `wow run` in its namespace, detached (it outlives this script); records its PID."""
        control = self.path("ctl", f"{node['name']}.sock")
        log = open(self.path("logs", f"{node['name']}.log"), "ab")
        process = subprocess.Popen(
            ["ip", "netns", "exec", node["ns"], self.wow, "run", "--config", self.path("configs", f"{node['name']}.yml"),
             "--control", control, "--log-level", self.state.get("log_level", "notice")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        node["pid"], node["control"] = process.pid, control
        return process

    def all_processes(self):
        pids = [n.get("pid") for n in self.nodes] + self.state.get("extra_pids", [])
        return [p for p in pids if p and alive(p)]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pids(pids, grace=5.0):
    """SIGTERM to every one of `pids` at once, SIGKILL to those still alive after `grace` seconds."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    for pid in pids:
        stop_pid(pid, grace=0)


def stop_pid(pid, grace=3.0):
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + grace
    while alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def status(control, timeout=3.0):
    """The node's `status` over its control socket (what `wow status --json` prints), or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(control)
            s.sendall(b"status\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        answer = json.loads(b"".join(chunks))
        return None if "error" in answer else answer
    except (OSError, ValueError):
        return None


def ring_neighbours(address, addresses):
    """The two addresses next to ADDRESS on the ring of ADDRESSES (which holds it)."""
    ring = sorted(set(addresses), key=lambda a: int(a, 16))
    i = ring.index(address)
    return {ring[i - 1], ring[(i + 1) % len(ring)]} - {address}


def is_direct(connection):
    return connection.get("relayed_via") is None and connection.get("transport") != "relay"


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def fmt(seconds):
    return "—" if seconds is None else f"{seconds:.2f}"


# --- up / down -----------------------------------------------------------------------------------------------

def down(args):
    bed = Testbed(args.dir)
    pids = bed.all_processes() if bed.state else []
    stop_pids(pids)
    # Anything else still running inside a testbed namespace (a crashed run's processes) goes too.
    for name in namespaces():
        for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
            stop_pid(int(pid), grace=1)
    for name in namespaces():
        run("ip", "netns", "del", name, check=False)
    left = namespaces()
    if left:
        raise Failure(f"could not delete {', '.join(left)}")
    if bed.state:
        bed.state["down_at"] = time.time()
        for n in bed.nodes:
            n["pid"] = None
        bed.state["extra_pids"] = []
        bed.save()
    print(f"testbed down: {len(pids)} processes stopped, namespaces deleted")


def up(args):
    if namespaces():
        raise Failure(f"a testbed is up ({', '.join(namespaces()[:3])}, …): run `{sys.argv[0]} down` first")
    for tool in ("ip", "iptables", "ping"):
        if not shutil.which(tool):
            raise Failure(f"the testbed needs `{tool}`")
    if not os.path.exists("/dev/net/tun"):
        raise Failure("the testbed needs /dev/net/tun (modprobe tun)")
    wow = os.path.abspath(args.wow)
    if not os.access(wow, os.X_OK):
        raise Failure(f"no wow executable at {wow}: build it (`swift build -c release`) or pass --wow")
    if args.routers < 2 or args.workstations < 2:
        raise Failure("--routers and --workstations must be at least 2")
    if os.path.exists(args.dir):
        shutil.rmtree(args.dir)
    for sub in ("keys", "configs", "logs", "ctl", "results"):
        os.makedirs(os.path.join(args.dir, sub))
    bed = Testbed(args.dir)
    started = time.time()

    # Namespaces: the WAN, the router namespaces, the domains and their hosts.
    make_ns(f"{PREFIX}wan")
    nsrun(f"{PREFIX}wan", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    pub_count = min(4, max(2, math.ceil(args.routers / 30)))
    routers = []
    for i in range(args.routers):
        k, m = i % pub_count + 1, i // pub_count + 1
        routers.append({"name": f"r{i}", "ns": f"{PREFIX}pub{k}", "ip": f"198.18.{10 + k}.{m}", "kind": "router"})
    for k in range(1, pub_count + 1):
        name = f"{PREFIX}pub{k}"
        make_ns(name)
        wan_port(name, [r["ip"] for r in routers if r["ns"] == name], [f"198.18.{10 + k}.0/24"])
    for d in DOMAINS:
        build_domain(d)
        make_ns(f"{d.router}-j")
        attach(d.lan_router, f"{d.router}-j", d.host_lan, 200)
    workstations = []
    for i in range(args.workstations):
        d = DOMAINS[i % len(DOMAINS)]
        index = i // len(DOMAINS) + 1
        name = f"d{d.number}-w{index}"
        ws = {"name": name, "ns": f"{PREFIX}{name}", "domain": d.number, "lan_ip": f"{d.host_lan}.{10 + index}",
              "vip": f"100.64.{d.number}.{index}", "kind": "workstation"}
        make_ns(ws["ns"])
        attach(d.lan_router, ws["ns"], d.host_lan, 10 + index)
        workstations.append(ws)
    head = run("git", "-C", REPO, "rev-parse", "--short", "HEAD", check=False).stdout.strip() or "unknown"
    dirty = run("git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip()
    bed.state = {"wow": wow, "routers": routers, "workstations": workstations, "created_at": started,
                 "commit": head + (" with uncommitted changes" if dirty else ""),
                 "bootstraps": [routers[0]["ip"], routers[1]["ip"]], "log_level": args.log_level, "extra_pids": [],
                 "fixed_peer": workstations[0]["name"], "shared_udp_port": args.shared_udp_port}
    bed.save()
    print(f"namespaces: {len(namespaces())} ({time.time() - started:.1f} s)")

    # Credentials: one CA, a key and certificate per node (workstations name their virtual IP). With --keys,
    # the CA and node keys of an earlier run are reused: the same network puts every node at the same ring
    # position (derived from the network and the virtual IP), so two builds can be compared on one layout.
    if args.keys:
        if not os.path.exists(os.path.join(args.keys, "ca.key")):
            raise Failure(f"--keys {args.keys}: no ca.key there (give the keys directory of an earlier run)")
        for name in os.listdir(args.keys):
            if name.endswith(".key") or name == "ca.crt":
                shutil.copy(os.path.join(args.keys, name), bed.path("keys", name))
    else:
        run(wow, "ca", "init", "--name", "testbed", "--dir", bed.path("keys"))
    for n in routers + workstations:
        bed.credentials(n["name"], n.get("vip"))
    for r in routers:
        bed.write_config(r["name"], r["ip"], bed.bootstrap_uris(exclude=r["ip"]) if r is not routers[0] else [], tun=False)
    for w in workstations:
        bed.write_config(w["name"], "0.0.0.0", bed.bootstrap_uris(), tun=True, domain=w["domain"],
                         udp_port=workstation_udp_port(bed, w["name"]))
    print(f"credentials and configs: {len(routers) + len(workstations)} nodes ({time.time() - started:.1f} s)")

    # Start: the bootstraps, then the routers and workstations a few at a time.
    for n in routers[:2]:
        bed.start(n)
        bed.save()
        wait_for(lambda: status(n["control"]) is not None, 20, f"{n['name']} never answered on its control socket")
    rest = routers[2:] + workstations
    for i in range(0, len(rest), args.batch):
        batch = rest[i:i + args.batch]
        for n in batch:
            bed.start(n)
        bed.save()
        wait_for(lambda: all(status(n["control"]) is not None for n in batch), 30,
                 f"a node of {[n['name'] for n in batch]} never answered on its control socket")
        time.sleep(args.interval)
    all_started = time.time()
    print(f"started: {len(bed.nodes)} nodes ({all_started - started:.1f} s)")

    for n in bed.nodes:
        n["address"] = status(n["control"])["address"]
    bed.save()
    converged = wait_ring(bed, args.settle)
    bed.state["up"] = {"namespaces": len(namespaces()), "nodes": len(bed.nodes),
                       "seconds_to_start": all_started - started, "ring_converged_s": converged}
    bed.save()
    if converged is None:
        raise Failure(f"the ring did not converge within {args.settle} s of the last start: {ring_report(bed)}")
    print(f"ring consistent {converged:.1f} s after the last node started: every node's neighbours are its true ones")


def wait_for(condition, timeout, message):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    if not condition():
        raise Failure(message)


def ring_check(bed, nodes=None):
    """For each running node: whether it is a ring member whose left and right neighbours are its true ones."""
    nodes = [n for n in (nodes or bed.nodes) if n.get("pid") and alive(n["pid"])]
    addresses = [n["address"] for n in nodes]
    verdict = {}
    for n in nodes:
        s = status(n["control"])
        if s is None:
            verdict[n["name"]] = "no status"
            continue
        want = ring_neighbours(n["address"], addresses)
        have = {s.get("left_neighbour"), s.get("right_neighbour")}
        verdict[n["name"]] = "ok" if s.get("ring_member") and have == want else \
            f"neighbours {sorted(a[:8] for a in have if a)} != {sorted(a[:8] for a in want)}"
    return verdict


def ring_report(bed):
    bad = {k: v for k, v in ring_check(bed).items() if v != "ok"}
    return "all consistent" if not bad else "; ".join(f"{k}: {v}" for k, v in sorted(bad.items())[:10]) + \
        (f" (and {len(bad) - 10} more)" if len(bad) > 10 else "")


def wait_ring(bed, timeout):
    start = time.time()
    while time.time() - start < timeout:
        if all(v == "ok" for v in ring_check(bed).values()):
            return time.time() - start
        time.sleep(1)
    return None


# --- measure / status ----------------------------------------------------------------------------------------

def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().split(")")[-1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def sample(bed):
    """RSS (MB) and open fds of every running node, by name."""
    return {n["name"]: {"rss_mb": rss_mb(n["pid"]), "fds": open_fds(n["pid"]), "cpu_s": cpu_seconds(n["pid"])}
            for n in bed.nodes if n.get("pid") and alive(n["pid"])}


def measure(args):
    bed = Testbed(args.dir)
    require_up(bed)
    first = sample(bed)
    time.sleep(args.seconds)
    second = sample(bed)
    names = [k for k in second if k in first and first[k]["cpu_s"] is not None]
    cpu = {k: (second[k]["cpu_s"] - first[k]["cpu_s"]) / args.seconds for k in names}
    result = {"at": time.time(), "seconds": args.seconds, "nodes": len(names),
              "rss_mb": {k: second[k]["rss_mb"] for k in names}, "fds": {k: second[k]["fds"] for k in names},
              "cpu_cores": cpu, "total_cpu_cores": sum(cpu.values()),
              "total_rss_mb": sum(second[k]["rss_mb"] for k in names)}
    append_result(bed, "measure", result)
    rss = [result["rss_mb"][k] for k in names]
    print(f"{len(names)} nodes over {args.seconds} s idle: total CPU {result['total_cpu_cores'] * 100:.1f}% of one core "
          f"(per node p50 {percentile(list(cpu.values()), 50) * 100:.2f}%, max {max(cpu.values()) * 100:.2f}%); "
          f"RSS total {result['total_rss_mb']:.0f} MB, per node p50 {percentile(rss, 50):.1f} MB, max {max(rss):.1f} MB; "
          f"open fds max {max(result['fds'].values())}")


def require_up(bed):
    if not bed.state or not namespaces():
        raise Failure(f"no testbed is up in {bed.dir}: run `{sys.argv[0]} up` first")


def show_status(args):
    bed = Testbed(args.dir)
    require_up(bed)
    running = [n for n in bed.nodes if n.get("pid") and alive(n["pid"])]
    print(f"{len(running)}/{len(bed.nodes)} nodes running; ring: {ring_report(bed)}")
    for n in bed.state["workstations"]:
        s = status(n["control"]) if n in running else None
        if s is None:
            print(f"  {n['name']:10} {n['vip']:14} not answering")
            continue
        kinds = {}
        for c in s["connections"]:
            key = c["path"].split(" ")[0] + (" " + c["transport"] if is_direct(c) else "")
            kinds[key] = kinds.get(key, 0) + 1
        print(f"  {n['name']:10} {n['vip']:14} {len(s['connections'])} connections "
              + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) + f"; nat: {s['nat'][:40]}")


def append_result(bed, experiment, record):
    record.setdefault("commit", bed.state.get("commit", "unknown"))
    with open(bed.path("results", f"{experiment}.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


def read_results(directory, experiment):
    path = os.path.join(directory, "results", f"{experiment}.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --- join experiment -----------------------------------------------------------------------------------------

def join(args):
    """Fresh workstations (a new identity and process each trial) join in each domain in turn; records the
    seconds from starting the process until it is routable (connected to both its true ring neighbours), until
    it holds a connection to a fixed peer it pings, until that connection is direct, and the first ping reply."""
    if args.domains and not set(args.domains) <= set(DOMAIN):
        raise Failure(f"--domains: the domains are 1-{len(DOMAINS)}")
    bed = Testbed(args.dir)
    require_up(bed)
    fixed = bed.node(bed.state["fixed_peer"])
    trials = bed.state.setdefault("join_trials", 0)
    print(f"join: {args.trials} trials, fixed peer {fixed['name']} ({fixed['vip']}, domain {fixed['domain']})")
    print(f"{'trial':>5} {'domain':14} {'routable':>9} {'connected':>9} {'direct':>7} {'1st reply':>9}  path")
    domains = [DOMAIN[n] for n in args.domains] if args.domains else DOMAINS
    for t in range(trials, trials + args.trials):
        d = domains[t % len(domains)]
        k = t // len(DOMAINS) if not args.domains else t
        name = f"j{d.number}-{k}"
        node = {"name": name, "ns": f"{d.router}-j", "vip": f"100.{66 + k // 250}.{d.number}.{k % 250 + 1}",
                "domain": d.number}
        bed.credentials(name, node["vip"])
        bed.write_config(name, "0.0.0.0", bed.bootstrap_uris(), tun=True, domain=d.number,
                         udp_port=workstation_udp_port(bed, name))
        record = join_trial(bed, node, fixed, args.deadline)
        record.update({"trial": t, "domain": d.number, "kind": d.kind, "direct_possible": d.kind in DIRECT_POSSIBLE})
        append_result(bed, "join", record)
        bed.state["join_trials"] = t + 1
        bed.save()
        print(f"{t:>5} d{d.number} {d.kind:11} {fmt(record['routable_s']):>9} {fmt(record['connected_s']):>9} "
              f"{fmt(record['direct_s']):>7} {fmt(record['first_reply_s']):>9}  {record['path'] or '—'}"
              + (f"  ({record['error']})" if record.get("error") else ""), flush=True)
        for f in (bed.path("keys", f"{name}.key"), bed.path("keys", f"{name}.crt")):
            os.remove(f)
    summarize_join(read_results(bed.dir, "join"))


# Between a joiner in these domains and the fixed peer (behind a port-restricted cone NAT) a direct path can
# exist (a UDP hole punch, or the LAN); from the others (a symmetric NAT, no UDP out) only a relay can join them.
DIRECT_POSSIBLE = {"cone", "nested"}


def join_trial(bed, node, fixed, deadline):
    record = {"routable_s": None, "connected_s": None, "direct_s": None, "first_reply_s": None, "path": None,
              "replies": 0, "pings": 0, "error": None}
    start_wall = time.time()
    process = bed.start(node)
    ping = None
    ping_log = bed.path("logs", f"{node['name']}.ping")
    address = None
    last = None  # the joiner's last status
    others = [n["address"] for n in bed.nodes if n.get("pid") and alive(n["pid"])]
    names = {n["address"]: n["name"] for n in bed.nodes}
    direct_possible = DOMAIN[node["domain"]].kind in DIRECT_POSSIBLE
    answered = False
    fixed_address = fixed["address"]
    try:
        while time.time() - start_wall < deadline:
            if process.poll() is not None:
                record["error"] = f"wow run exited ({process.returncode})"
                break
            s = status(node["control"], timeout=1)
            now = time.time()
            if s is None:
                time.sleep(0.02)
                continue
            last = s
            if address is None:
                address = s["address"]
                want = ring_neighbours(address, others + [address])
                # The TUN exists once the control socket answers: ping the fixed peer (its traffic is what
                # makes the shortcut strategy link the two).
                ping = subprocess.Popen(["ip", "netns", "exec", node["ns"], "ping", "-n", "-D", "-i", "0.2", "-W", "1",
                                         "-w", str(int(deadline) + 1), fixed["vip"]],
                                        stdout=open(ping_log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
            record["drops"] = s.get("drops")
            by_peer = {c["peer"]: c for c in s["connections"]}
            if record["routable_s"] is None:
                linked = [by_peer[a] for a in want
                          if a in by_peer and any(t.startswith("structured")
                                                  for t in by_peer[a]["local_types"] + by_peer[a]["remote_types"])]
                if len(linked) == len(want):
                    record["routable_s"] = now - min(c["age_s"] for c in linked) - start_wall
                    record["neighbours"] = [f"{names.get(c['peer'], c['peer'][:8])} {c['path']}" for c in linked]
            c = by_peer.get(fixed_address)
            if c is not None:
                if record["connected_s"] is None:
                    record["connected_s"] = now - c["age_s"] - start_wall
                record["path"] = c["path"]
                if record["direct_s"] is None and is_direct(c):
                    record["direct_s"] = (now - c["age_s"] if c["path_switches"] == 0 else now) - start_wall
            if not answered and ping is not None and os.path.exists(ping_log):
                with open(ping_log) as f:
                    answered = "bytes from" in f.read()
            # Done once routable, a ping answered, and the path there is what can exist (direct, or a relay).
            if record["routable_s"] is not None and answered and (record["direct_s"] is not None or
                                                                  (not direct_possible and record["connected_s"] is not None)):
                break
            time.sleep(0.05)
        else:
            record["error"] = "deadline"
            # Why no direct path where one was possible: what each end made of its NAT and of the other.
            if direct_possible and last is not None:
                record["diagnosis"] = diagnosis(last, status(fixed["control"], timeout=2), fixed_address)
    finally:
        if ping is not None:
            ping.send_signal(signal.SIGINT)  # ping prints its summary on SIGINT
            try:
                ping.wait(timeout=3)
            except subprocess.TimeoutExpired:
                ping.kill()
                ping.wait()
        stop_pid(process.pid)
        process.wait()
        if os.path.exists(node["control"]):
            os.remove(node["control"])
    replies = []
    if os.path.exists(ping_log):
        with open(ping_log) as f:
            lines = f.readlines()
        # What ping said besides its replies (errors, ICMP unreachables), for the record.
        record["ping_said"] = [l.strip()[:160] for l in lines if "bytes from" not in l and l.strip()][-6:]
        for line in lines:
                if "bytes from" in line and line.startswith("["):
                    replies.append(float(line[1:line.index("]")]))
                elif "packets transmitted" in line:
                    record["pings"] = int(line.split()[0])
        os.remove(ping_log)
    record["replies"] = len(replies)
    if replies:
        record["first_reply_s"] = min(replies) - start_wall
    return record


def diagnosis(joiner, fixed, fixed_address):
    """What the joiner's and the fixed peer's status say of their NATs and of each other, for a trial that
    ended without the direct path a punch could make (its record then says why, in CI's output too)."""
    def side(s, peer):
        if s is None:
            return None
        c = next((c for c in s["connections"] if c["peer"] == peer), None)
        return {"nat": s.get("nat"), "uris": s.get("uris"), "observed": s.get("observed_uris"),
                "drops": s.get("drops"),
                "to_other": c and {k: c.get(k) for k in ("path", "remote_uri", "peer_uris", "age_s", "path_switches",
                                                         "alternatives", "former_paths")}}
    return {"joiner": side(joiner, fixed_address), "fixed": side(fixed, joiner["address"])}


def summarize_join(records):
    if not records:
        print("no join trials yet")
        return
    rows = []
    for label, subset in [("all", records)] + [(f"d{d.number} {d.kind}", [r for r in records if r["domain"] == d.number])
                                               for d in DOMAINS]:
        if not subset:
            continue
        routable = [r["routable_s"] for r in subset if r["routable_s"] is not None]
        direct = [r["direct_s"] for r in subset if r["direct_s"] is not None]
        relayed = [r for r in subset if r["direct_s"] is None and r["connected_s"] is not None]
        rows.append((label, len(subset), len(routable), fmt(percentile(routable, 50)), fmt(percentile(routable, 90)),
                     fmt(percentile(routable, 99)), len(direct), fmt(percentile(direct, 90)),
                     fmt(percentile(direct, 99)), len(relayed)))
    print(f"{'':18} {'trials':>6} {'routable':>8} {'p50':>6} {'p90':>6} {'p99':>6} {'direct':>6} {'p90':>6} {'p99':>6} {'relayed':>7}")
    for row in rows:
        print(f"{row[0]:18} {row[1]:>6} {row[2]:>8} {row[3]:>6} {row[4]:>6} {row[5]:>6} {row[6]:>6} {row[7]:>6} {row[8]:>6} {row[9]:>7}")


# --- migration experiment ------------------------------------------------------------------------------------

STREAM = os.path.join(REPO, "Tests", "Scripts", "tcp-stream.py")


def as_host(namespace, hostname, argv):
    """ARGV run in NAMESPACE under its own host name (a UTS namespace of its own), as on a separate machine."""
    return ["ip", "netns", "exec", namespace, "unshare", "--uts", "sh", "-c", 'hostname "$1" && shift && exec "$@"',
            "sh", hostname, *argv]


def start_sshd(bed, node, listen=None):
    """An OpenSSH server in NODE's namespace on LISTEN (default its virtual IP), with a host key and authorized
    key made here, under its own host name (a UTS namespace of its own, as a separate machine would have:
    MPI tells its hosts apart by name); None without sshd."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if sshd is None or not shutil.which("ssh"):
        return None
    d = bed.path("ssh")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o700)
    for key in ("host_key", "client_key"):
        if not os.path.exists(os.path.join(d, key)):
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, key))
    shutil.copy(os.path.join(d, "client_key.pub"), os.path.join(d, "authorized_keys"))
    os.makedirs("/run/sshd", exist_ok=True)
    config = os.path.join(d, f"sshd-{node['name']}.conf")
    with open(config, "w") as f:
        f.write("".join(f"ListenAddress {a}\n" for a in (listen or [node["vip"]]))
                + f"Port 22\nHostKey {d}/host_key\nPidFile {d}/sshd-{node['name']}.pid\n"
                f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nClientAliveInterval 0\n"
                "MaxStartups 100:30:200\nMaxSessions 100\n")
    process = subprocess.Popen(as_host(node["ns"], node["name"], [sshd, "-D", "-e", "-f", config]),
                               stdout=open(bed.path("logs", f"sshd-{node['name']}.log"), "w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    bed.state.setdefault("extra_pids", []).append(process.pid)
    bed.save()
    return process


SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]


def ssh_command(bed, node=None, port=22):
    """`ssh` with the testbed's client key (and NODE's virtual IP as the destination, if given)."""
    command = ["ssh", "-i", bed.path("ssh", "client_key"), *SSH_OPTIONS] + (["-p", str(port)] if port != 22 else [])
    return command + ([f"root@{node['vip']}"] if node else [])


def move(bed, node, domain):
    """Re-plugs NODE's uplink into DOMAIN's LAN (a new address there); its processes keep running."""
    d = DOMAIN[domain]
    used = {int(n["lan_ip"].rsplit(".", 1)[1]) for n in bed.state["workstations"] if n["domain"] == domain}
    octet = next(o for o in range(100, 200) if o not in used)
    run("ip", "-n", node["ns"], "link", "del", "eth0")
    attach(d.lan_router, node["ns"], d.host_lan, octet)
    node["domain"], node["lan_ip"] = domain, f"{d.host_lan}.{octet}"
    bed.save()


def migrate(args):
    """A workstation moves to another domain while an SSH session streams output from a peer and a checksummed
    TCP transfer runs to that peer, both over virtual IPs; both must survive with nothing lost."""
    bed = Testbed(args.dir)
    require_up(bed)
    mover, peer = bed.node(args.mover), bed.node(args.peer)
    if mover["kind"] != "workstation" or peer["kind"] != "workstation" or mover is peer:
        raise Failure("--mover and --peer must be two workstations")
    if args.to not in DOMAIN or args.to == mover["domain"]:
        raise Failure(f"--to must be a domain 1-{len(DOMAINS)} other than the mover's (d{mover['domain']})")
    from_domain = mover["domain"]
    tag = f"migrate-{int(time.time())}"
    result_path = bed.path("results", f"{tag}.stream")
    receiver = subprocess.Popen(["ip", "netns", "exec", peer["ns"], sys.executable, STREAM, "receive", "--listen",
                                 f"{peer['vip']}:5201", "--result", result_path], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for(lambda: os.path.exists(result_path + ".listening"), 10, "the stream receiver never listened")
    total = int(args.rate * args.seconds)
    sender = subprocess.Popen(["ip", "netns", "exec", mover["ns"], sys.executable, STREAM, "send", "--to",
                               f"{peer['vip']}:5201", "--bytes", str(total), "--rate", str(args.rate), "--result",
                               result_path + ".sent"], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    sshd = start_sshd(bed, peer) if not args.no_ssh else None
    lines, ssh = [], None
    count = int(args.seconds * 10)
    if sshd is not None:
        wait_for(lambda: nsrun(peer["ns"], "ss", "-ltn", check=False).stdout.find(f"{peer['vip']}:22") >= 0, 10,
                 "sshd never listened")
        ssh = subprocess.Popen(["ip", "netns", "exec", mover["ns"]] + ssh_command(bed, peer)
                               + [f"i=0; while [ $i -lt {count} ]; do echo $i; i=$((i+1)); sleep 0.1; done"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    import threading

    def read_ssh():
        for line in ssh.stdout:
            lines.append((time.monotonic(), line.strip()))

    reader = threading.Thread(target=read_ssh, daemon=True)
    if ssh is not None:
        reader.start()
    time.sleep(args.seconds / 3)
    moved_at = time.monotonic()
    move(bed, mover, args.to)
    print(f"moved {mover['name']} from d{from_domain} to d{args.to} ({mover['lan_ip']})", flush=True)
    record = {"mover": mover["name"], "peer": peer["name"], "from": from_domain, "to": args.to, "bytes": total}
    try:
        sender.wait(timeout=args.seconds * 4 + 240)
        receiver.wait(timeout=30)
    except subprocess.TimeoutExpired:
        record["error"] = "the stream did not finish"
        stop_pid(sender.pid, 0)
        stop_pid(receiver.pid, 0)
    ssh_error = ""
    if ssh is not None:
        try:
            ssh.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop_pid(ssh.pid, 0)
        reader.join(timeout=5)
        ssh_error = ssh.stderr.read().strip()
        stop_pid(sshd.pid, 1)
    sent = json.load(open(result_path + ".sent")) if os.path.exists(result_path + ".sent") else {}
    got = json.load(open(result_path)) if os.path.exists(result_path) else {}
    record.update({"stream_bytes": got.get("bytes"), "stream_intact": bool(got) and got.get("bytes") == total
                   and got.get("sha256") == sent.get("sha256"), "stream_longest_gap_s": got.get("longest_gap_s")})
    if ssh is not None:
        numbers = [l for _, l in lines]
        gaps = [b[0] - a[0] for a, b in zip(lines, lines[1:])]
        record.update({"ssh_lines": len(numbers), "ssh_intact": numbers == [str(i) for i in range(count)],
                       "ssh_longest_gap_s": max(gaps) if gaps else None, "ssh_exit": ssh.returncode,
                       "ssh_error": ssh_error[-300:]})
    else:
        record["ssh_intact"] = None
    append_result(bed, "migrate", record)
    print(json.dumps(record))
    ok = record["stream_intact"] and record["ssh_intact"] is not False
    print("migration: " + ("both survived, nothing lost" if ok else "LOST DATA"))
    if not ok:
        raise Failure("the migration lost data: " + json.dumps(record))


# --- applications experiment ---------------------------------------------------------------------------------

MPI_SOURCE = os.path.join(REPO, "Scripts", "testbed-mpi.c")


class PortForwards:
    """Without an overlay, a host behind a NAT is reached over the underlay only through a port forward on each
    NAT in front of it: what an administrator would configure for the baseline. Rules are added with -I and
    taken out again with -D (a `down` deletes them with the namespaces anyway)."""

    def __init__(self):
        self.rules = []

    def add(self, namespace, *rule):
        nsrun(namespace, "iptables", *rule[:1], "-I", *rule[1:])
        self.rules.append((namespace, rule))

    def forward(self, workstation, port):
        """Makes WORKSTATION's ssh (port 22) reachable at its domain's public address, port PORT."""
        d = DOMAIN[workstation["domain"]]
        hops = [(d.router, f"{d.lan}.2" if d.kind == "nested" else workstation["lan_ip"], port if d.kind == "nested" else 22)]
        if d.kind == "nested":
            hops.append((d.lan_router, workstation["lan_ip"], 22))
        for namespace, to, to_port in hops:
            self.add(namespace, "-tnat", "PREROUTING", "-i", "eth0", "-p", "tcp", "--dport", str(port), "-j", "DNAT",
                     "--to-destination", f"{to}:{to_port}")
            self.add(namespace, "-tfilter", "FORWARD", "-i", "eth0", "-o", "br0", "-p", "tcp", "-d", to, "--dport",
                     str(to_port), "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
            # The replies, also where the NAT lets nothing else out (only TCP to 443, or no UDP).
            self.add(namespace, "-tfilter", "FORWARD", "-i", "br0", "-o", "eth0", "-p", "tcp", "-s", to, "--sport",
                     str(to_port), "-m", "conntrack", "--ctstate", "ESTABLISHED", "-j", "ACCEPT")
        return d.wan, port

    def remove(self):
        for namespace, rule in reversed(self.rules):
            nsrun(namespace, "iptables", *rule[:1], "-D", *rule[1:], check=False)
        self.rules = []


def apps(args):
    """Unmodified applications over the virtual network against the same over the underlay: a job farm (GNU
    parallel running a CPU-bound command over ssh on every other workstation) and an MPI job (openmpi's mpirun
    over ssh), from the head workstation, alternating WOW and underlay runs; records jobs per minute and run
    times, checks every job's output."""
    for tool, package in (("parallel", "parallel"), ("mpirun", "openmpi-bin"), ("mpicc", "libopenmpi-dev"),
                          ("ssh", "openssh-client"), ("unshare", "util-linux")):
        if not shutil.which(tool):
            raise Failure(f"run apps needs `{tool}` (apt-get install {package})")
    if not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")):
        raise Failure("run apps needs sshd (apt-get install openssh-server)")
    bed = Testbed(args.dir)
    require_up(bed)
    head = bed.node(args.head)
    workers = [w for w in bed.state["workstations"] if w is not head and w.get("pid") and alive(w["pid"])]
    if head["kind"] != "workstation" or not workers:
        raise Failure("--head must be a running workstation, and another must run")
    # Underlay addresses: the head's LAN neighbours directly, everyone else through port forwards.
    forwards = PortForwards()
    sshds = []
    try:
        for i, w in enumerate(workers):
            sshds.append(start_sshd(bed, w, listen=[w["vip"], w["lan_ip"]]))
            w["underlay"] = (w["lan_ip"], 22) if w["domain"] == head["domain"] else forwards.forward(w, 22001 + i)
        for w in workers:
            wait_for(lambda: nsrun(w["ns"], "ss", "-ltn", check=False).stdout.count(":22 ") >= 2, 10,
                     f"sshd on {w['name']} never listened")
        ssh = ssh_command(bed)
        routes = {"wow": {w["name"]: (w["vip"], 22) for w in workers},
                  "underlay": {w["name"]: w["underlay"] for w in workers}}
        # Every worker must answer its name over both (this also warms the paths: the shortcuts form here).
        for network, table in routes.items():
            for w in workers:
                host, port = table[w["name"]]
                answer = nsrun(head["ns"], *ssh, "-p", str(port), f"root@{host}", "hostname", check=False)
                if answer.returncode != 0 or answer.stdout.strip() != w["name"]:
                    raise Failure(f"ssh to {w['name']} over the {network} ({host}:{port}) failed: {answer.stdout.strip()[-300:]}")
        print(f"apps: head {head['name']}, {len(workers)} workers; ssh answers over WOW and over the underlay "
              f"({sum(1 for w in workers if w['domain'] != head['domain'])} through port forwards)", flush=True)
        expected = run("sh", "-c", f"dd if=/dev/zero bs=1M count={args.job_mb} 2>/dev/null | sha256sum").stdout.split()[0]
        mpi = bed.path("testbed-mpi")
        run("mpicc", "-O2", "-o", mpi, MPI_SOURCE)
        mpi_sets = {"lan": [w for w in workers if w["domain"] == head["domain"]][:args.mpi_ranks - 1],
                    "domains": [w for w in workers if w["domain"] != head["domain"]][:args.mpi_ranks - 1]}
        record = {"at": time.time(), "head": head["name"], "workers": len(workers), "jobs": args.jobs,
                  "job_mb": args.job_mb, "farm": [], "mpi": []}
        for r in range(args.rounds):
            for network in ("wow", "underlay"):
                result = job_farm(bed, head, routes[network], ssh, args.jobs, args.job_mb, expected)
                result.update({"network": network, "round": r})
                record["farm"].append(result)
                print(f"  farm  {network:8} round {r}: {result['jobs_per_minute']:.1f} jobs/min "
                      f"({result['seconds']:.1f} s, {result['ok']}/{args.jobs} right)", flush=True)
            for name, members in mpi_sets.items():
                for network in ("wow", "underlay"):
                    if network == "underlay" and name == "domains":
                        continue  # ranks behind different NATs cannot open connections to each other
                    hosts = [head["vip"] if network == "wow" else head["lan_ip"]] + [routes[network][w["name"]][0] for w in members]
                    result = mpi_job(bed, head, hosts, network, ssh, mpi, args)
                    result.update({"set": name, "network": network, "round": r,
                                   "domains": sorted({head["domain"]} | {w["domain"] for w in members})})
                    record["mpi"].append(result)
                    print(f"  mpi   {name:7} {network:8} round {r}: {len(hosts)} ranks, "
                          + (f"{result['total_s']:.2f} s (farm {result['farm_s']:.2f}, allreduce "
                             f"{result['allreduce_s']:.2f}, bcast {result['bcast_s']:.2f})" if result.get("ok") else
                             f"FAILED: {result.get('error')}"), flush=True)
    finally:
        forwards.remove()
        for process in sshds:
            if process is not None:
                stop_pid(process.pid, 1)
    append_result(bed, "apps", record)
    summary = summarize_apps(record)
    print(summary)
    bad = [f for f in record["farm"] if f["ok"] != args.jobs] + [m for m in record["mpi"] if not m.get("ok")]
    if bad:
        raise Failure(f"{len(bad)} application runs lost or got wrong results: {json.dumps(bad)[:600]}")


def job_farm(bed, head, table, ssh, jobs, job_mb, expected):
    """GNU parallel in HEAD runs JOBS jobs, one at a time per worker, each hashing JOB_MB MB on the worker."""
    logins = bed.path(f"sshlogins-{head['name']}")
    with open(logins, "w") as f:
        for host, port in table.values():
            f.write(f"1/{' '.join(ssh)} -p {port} root@{host}\n")
    started = time.monotonic()
    result = nsrun(head["ns"], "parallel", "--will-cite", "--sshloginfile", logins, "--halt", "never",
                   f"echo {{}} $(dd if=/dev/zero bs=1M count={job_mb} 2>/dev/null | sha256sum)",
                   ":::", *map(str, range(jobs)), check=False)
    seconds = time.monotonic() - started
    seen = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            seen[int(parts[0])] = parts[1]
    ok = sum(1 for i in range(jobs) if seen.get(i) == expected)
    return {"seconds": seconds, "jobs_per_minute": jobs / seconds * 60, "ok": ok, "exit": result.returncode}


def mpi_job(bed, head, hosts, network, ssh, program, args):
    """openmpi's mpirun in HEAD (its own host name) starts one rank per host over ssh; TCP only, on the
    network's addresses."""
    subnet = "100.64.0.0/10" if network == "wow" else "198.18.0.0/15"
    if network == "underlay":
        subnet = ",".join(sorted({".".join(h.split(".")[:3]) + ".0/24" for h in hosts}))
    command = ["mpirun", "--allow-run-as-root", "--host", ",".join(f"{h}:1" for h in hosts), "-np", str(len(hosts)),
               "--mca", "plm_rsh_agent", " ".join(ssh), "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include",
               subnet, "--mca", "oob_tcp_if_include", subnet, "--mca", "mpi_yield_when_idle", "1",
               program, str(args.mpi_tasks), str(args.mpi_iterations), str(args.mpi_rounds), str(args.mpi_bytes)]
    started = time.monotonic()
    try:
        result = subprocess.run(as_host(head["ns"], head["name"], command),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                                timeout=args.mpi_timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {args.mpi_timeout:g} s", "wall_s": time.monotonic() - started}
    out = {"wall_s": time.monotonic() - started, "ok": False}
    for line in result.stdout.splitlines():
        if line.startswith("ranks="):
            out.update({k: (float(v) if k.endswith("_s") else v) for k, v in (p.split("=") for p in line.split())})
            out["ok"] = out.get("ok") == "1" and result.returncode == 0
    if not out["ok"]:
        out["error"] = f"exit {result.returncode}: {result.stdout.strip()[-400:]}"
    return out


def summarize_apps(record):
    def median_of(values):
        return statistics.median(values) if values else None
    farm = {n: median_of([f["jobs_per_minute"] for f in record["farm"] if f["network"] == n]) for n in ("wow", "underlay")}
    lines = [f"job farm: {record['jobs']} jobs on {record['workers']} workers, median "
             f"{fmt(farm['wow'])} jobs/min through WOW, {fmt(farm['underlay'])} over the underlay"
             + (f" (ratio {farm['wow'] / farm['underlay']:.2f})" if farm["wow"] and farm["underlay"] else "")]
    for name in ("lan", "domains"):
        runs = {n: median_of([m["total_s"] for m in record["mpi"] if m["set"] == name and m["network"] == n and m.get("ok")])
                for n in ("wow", "underlay")}
        if runs["wow"] is None and runs["underlay"] is None:
            continue
        lines.append(f"mpi ({name}): median {fmt(runs['wow'])} s through WOW, "
                     + (f"{fmt(runs['underlay'])} s over the underlay (ratio {runs['wow'] / runs['underlay']:.2f})"
                        if runs["underlay"] and runs["wow"] else "no underlay run (NATs between the ranks)"))
    return "\n".join(lines)


# --- churn experiment ----------------------------------------------------------------------------------------

def churn(args):
    """A share of the router nodes (not the bootstraps) is killed (SIGKILL) one by one over the run and each
    restarted `--down` seconds later, while every workstation pings another, in turn, all the time. Records the
    pings' delivery, the ring's consistency (sampled), and every node's RSS and open fds (sampled)."""
    import threading
    bed = Testbed(args.dir)
    require_up(bed)
    candidates = [r for r in bed.state["routers"][2:] if r.get("pid") and alive(r["pid"])]
    rng = random.Random(args.seed)
    victims = rng.sample(candidates, max(1, round(len(bed.state["routers"]) * args.fraction)))
    period = args.minutes * 60
    stop = threading.Event()
    pings = []          # (time, ok)
    ring = []           # (time, consistent, bad nodes)
    memory = []         # (time, {name: (rss, fds)})
    events = []
    started = time.time()
    ws = [w for w in bed.state["workstations"] if w.get("pid") and alive(w["pid"])]

    def pinger(w, offset):
        others = [o for o in ws if o is not w]
        i = offset
        while not stop.is_set():
            target = others[i % len(others)]
            i += 1
            ok = nsrun(w["ns"], "ping", "-n", "-c", "1", "-W", "1", target["vip"], check=False).returncode == 0
            pings.append((time.time() - started, ok))
            stop.wait(max(0.0, args.ping_interval - 0.05))

    def watcher():
        while not stop.is_set():
            verdict = ring_check(bed)
            bad = [k for k, v in verdict.items() if v != "ok"]
            ring.append((time.time() - started, not bad, len(bad)))
            if int(time.time() - started) // 10 > len(memory) - 1:
                memory.append((time.time() - started, {k: (v["rss_mb"], v["fds"]) for k, v in sample(bed).items()}))
            stop.wait(1)

    threads = [threading.Thread(target=pinger, args=(w, i), daemon=True) for i, w in enumerate(ws)]
    threads.append(threading.Thread(target=watcher, daemon=True))
    for t in threads:
        t.start()
    print(f"churn: {len(victims)} of {len(bed.state['routers'])} routers killed and restarted over {args.minutes:g} "
          f"min ({args.down:g} s down each); {len(ws)} workstations pinging", flush=True)
    time.sleep(args.settle)
    for k, victim in enumerate(victims):
        at = args.settle + k * period / len(victims)
        time.sleep(max(0, started + at - time.time()))
        os.kill(victim["pid"], signal.SIGKILL)
        events.append({"router": victim["name"], "killed_s": time.time() - started})
        print(f"  {time.time() - started:6.1f} s  killed {victim['name']}", flush=True)
        time.sleep(args.down)
        bed.start(victim)
        bed.save()
        events[-1]["restarted_s"] = time.time() - started
        print(f"  {time.time() - started:6.1f} s  restarted {victim['name']}", flush=True)
    time.sleep(args.settle)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    # Healing: from each kill (and each restart), the time until the ring was next seen consistent.
    for e in events:
        for key in ("killed_s", "restarted_s"):
            later = [t for t, ok, _ in ring if ok and t >= e[key]]
            e[key.replace("_s", "_healed_after_s")] = (later[0] - e[key]) if later else None
    ok = sum(1 for _, good in pings if good)
    first, last = memory[0][1] if memory else {}, memory[-1][1] if memory else {}
    growth = {k: (last[k][0] - first[k][0], last[k][1] - first[k][1]) for k in last if k in first}
    record = {"at": started, "minutes": args.minutes, "victims": len(victims), "down_s": args.down,
              "pings": len(pings), "answered": ok, "delivery": ok / len(pings) if pings else None,
              "ring_samples": len(ring), "ring_consistent_share": sum(1 for _, c, _ in ring if c) / len(ring) if ring else None,
              "events": events, "memory": memory,
              "rss_growth_mb_max": max((g[0] for g in growth.values()), default=None),
              "fds_growth_max": max((g[1] for g in growth.values()), default=None)}
    append_result(bed, "churn", record)
    heal = [e["killed_healed_after_s"] for e in events if e.get("killed_healed_after_s") is not None]
    print(f"pings answered {ok}/{len(pings)} ({record['delivery'] * 100:.2f}%); ring consistent in "
          f"{record['ring_consistent_share'] * 100:.0f}% of {len(ring)} samples; healed after a kill p50 "
          f"{fmt(percentile(heal, 50))} s, max {fmt(max(heal) if heal else None)} s; largest growth over the run: "
          f"RSS {record['rss_growth_mb_max']:.1f} MB, fds {record['fds_growth_max']}")


# --- report --------------------------------------------------------------------------------------------------

def svg_cdf(path, title, series, markers, x_range=(0.01, 1000)):
    """A CDF chart on a log time axis: SERIES are (label, colour, values, total) (a value of None never
    happened: the curve ends below 1); MARKERS are (label, seconds, fraction) points (the paper's, the goals)."""
    width, height, left, right, top, bottom = 760, 430, 60, 20, 40, 60
    lo, hi = math.log10(x_range[0]), math.log10(x_range[1])

    def x(seconds):
        seconds = min(max(seconds, x_range[0]), x_range[1])
        return left + (math.log10(seconds) - lo) / (hi - lo) * (width - left - right)

    def y(fraction):
        return top + (1 - fraction) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for e in range(int(lo), int(hi) + 1):
        px = x(10 ** e)
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{height - bottom}" stroke="#ddd"/>')
        label = f"{10 ** e:g}"
        out.append(f'<text x="{px:.1f}" y="{height - bottom + 16}" text-anchor="middle">{label}</text>')
    for f in (0, 0.25, 0.5, 0.75, 0.9, 0.99, 1):
        out.append(f'<line x1="{left}" y1="{y(f):.1f}" x2="{width - right}" y2="{y(f):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y(f) + 4:.1f}" text-anchor="end">{f:g}</text>')
    out.append(f'<text x="{width / 2}" y="{height - 18}" text-anchor="middle">seconds after the process started (log scale)</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#333"/>')
    for i, (label, colour, values, total) in enumerate(series):
        done = sorted(v for v in values if v is not None)
        if total == 0:
            continue
        points = [(x(x_range[0]), y(0))]
        for k, v in enumerate(done):
            points += [(x(v), y(k / total)), (x(v), y((k + 1) / total))]
        points.append((x(x_range[1]), y(len(done) / total)))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                   + " ".join(f"{a:.1f},{b:.1f}" for a, b in points) + '"/>')
        ly = top + 16 + i * 16
        out.append(f'<line x1="{left + 10}" y1="{ly - 4}" x2="{left + 30}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + 36}" y="{ly}">{label} ({len(done)}/{total})</text>')
    for label, seconds, fraction, colour in markers:
        px, py = x(seconds), y(fraction)
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="none" stroke="{colour}" stroke-width="2"/>')
        anchor, dx = ("end", -8) if px > width * 0.7 else ("start", 8)
        out.append(f'<text x="{px + dx:.1f}" y="{py + 14:.1f}" fill="{colour}" text-anchor="{anchor}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def svg_series(path, title, samples):
    """One line per node: its RSS at each sample (seconds, {name: (rss, fds)})."""
    width, height, left, right, top, bottom = 760, 360, 60, 20, 40, 50
    names = sorted(set().union(*(set(m) for _, m in samples)))
    t_max = max(t for t, _ in samples) or 1
    values = [v[0] for _, m in samples for v in m.values() if v[0] is not None]
    v_max = max(values) * 1.1 if values else 1
    x = lambda t: left + t / t_max * (width - left - right)
    y = lambda v: top + (1 - v / v_max) * (height - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#333"/>']
    for k in range(5):
        v = v_max * k / 4
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        t = t_max * k / 4
        out.append(f'<text x="{x(t):.1f}" y="{height - bottom + 16}" text-anchor="middle">{t:.0f}</text>')
    out.append(f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">seconds into the run</text>')
    for name in names:
        points = [(x(t), y(m[name][0])) for t, m in samples if name in m and m[name][0] is not None]
        if len(points) > 1:
            colour = "#1f77b4" if name.startswith("r") else "#ff7f0e"
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-opacity="0.5" points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in points) + '"/>')
    out.append(f'<text x="{left + 10}" y="{top + 16}" fill="#1f77b4">routers</text>')
    out.append(f'<text x="{left + 80}" y="{top + 16}" fill="#ff7f0e">workstations</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def share_within(values, total, seconds):
    return sum(1 for v in values if v is not None and v <= seconds) / total if total else 0


def simulate(bed, out_dir):
    """`wow sim` for the testbed's shape: as many nodes, the same NAT mix (both firewalled kinds as
    udp-blocked), PlanetLab-like round trips (20-250 ms, which the kernel here cannot add)."""
    ws = bed.state["workstations"]
    total = len(bed.nodes)
    count = lambda kinds: sum(1 for w in ws if DOMAIN[w["domain"]].kind in kinds) / total
    mix = (f"port-restricted={count({'cone', 'nested'}):.4f},symmetric={count({'symmetric'}):.4f},"
           f"udp-blocked={count({'udp-blocked', 'tcp443'}):.4f}")
    csv = os.path.join(out_dir, "testbed-sim.csv")
    command = [bed.wow, "sim", "--nodes", str(total), "--nat", mix, "--flows", str(min(50, total // 2)), "--seed", "1",
               "--json", "--csv", csv]
    # The exit status says whether the run met the simulator's own checks; the report quotes what it measured.
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise Failure(f"`{' '.join(command)}` printed no report ({result.returncode}): {result.stderr.strip()}")
    with open(csv) as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    os.remove(csv)
    routable = [float(r[4]) if r[4] else None for r in rows]
    return "wow sim " + " ".join(command[2:-2]), report, routable


def built_from(records):
    """Which builds ran these results, for a section's first line."""
    commits = sorted({r.get("commit", "unknown") for r in records})
    return "Nodes built from " + " and ".join(f"`{c}`" for c in commits) + "."


def report(args):
    bed = Testbed(args.dir)
    if not bed.state:
        raise Failure(f"no testbed state in {bed.dir}: run `{sys.argv[0]} up` and an experiment first")
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    joins = read_results(bed.dir, "join")
    measures = read_results(bed.dir, "measure")
    lines = [f"# Testbed report", "",
             f"Generated by `Scripts/testbed.py report` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
             f"from the results in `{bed.dir}`. How the testbed is built and run: "
             "[testbed.md](testbed.md).", ""]
    routers, ws = bed.state["routers"], bed.state["workstations"]
    up_info = bed.state.get("up", {})
    lines += ["## The testbed", "",
              f"{len(routers)} public router nodes in {len({r['ns'] for r in routers})} namespaces and {len(ws)} "
              f"workstations with a TUN each, in {len(DOMAINS)} domains: "
              + "; ".join(f"d{d.number} {d.description} ({sum(1 for w in ws if w['domain'] == d.number)})" for d in DOMAINS)
              + f". Every node a `wow run` process, secured, default timers. Started in "
              f"{up_info.get('seconds_to_start', 0):.1f} s; ring consistent (every node's left and right neighbours "
              f"its true ones) {fmt(up_info.get('ring_converged_s'))} s after the last start.", ""]
    if measures:
        m = measures[-1]
        rss = list(m["rss_mb"].values())
        cpu = list(m["cpu_cores"].values())
        lines += [built_from([m]) + " " + f"Idle, measured over {m['seconds']:.0f} s: the {m['nodes']} processes used "
                  f"{m['total_cpu_cores'] * 100:.1f}% of one core together (per node p50 {percentile(cpu, 50) * 100:.2f}%, "
                  f"max {max(cpu) * 100:.2f}%); RSS {m['total_rss_mb']:.0f} MB in all, per node p50 "
                  f"{percentile(rss, 50):.1f} MB, max {max(rss):.1f} MB; open fds per node at most "
                  f"{max(m['fds'].values())}.", ""]
    if joins:
        total = len(joins)
        routable = [r["routable_s"] for r in joins]
        direct_trials = [r for r in joins if r.get("direct_possible")]
        relay_trials = [r for r in joins if not r.get("direct_possible")]
        reached = [r["direct_s"] for r in direct_trials]
        relayed = [r["connected_s"] for r in relay_trials]
        lines += ["## Join experiment", "", built_from(joins) + " " +
                  f"{total} trials: each starts a fresh workstation (new identity, new process) in the next domain, "
                  f"which pings the fixed peer {bed.state['fixed_peer']} (behind d1's port-restricted NAT) from the "
                  "moment its control socket answers. *Routable*: connected to both its true ring neighbours. "
                  "*Direct*: holds a connection to the fixed peer that is not relayed (domains where a direct path "
                  "can exist: the same LAN, another cone NAT, the nested NATs). *Relayed*: holds a connection to "
                  "it through a relay, from the domains where no direct path can exist (a symmetric NAT, no UDP "
                  "out, only TCP 443 out), counted apart. Times from starting the process.", "",
                  "| | paper (2006) | goal (issue 18) | WOW |", "|---|---|---|---|",
                  f"| routable within 10 s | 90% | | {share_within(routable, total, 10) * 100:.0f}% |",
                  f"| routable within 1 s | | 90% | {share_within(routable, total, 1) * 100:.0f}% |",
                  f"| direct within 200 s (where possible) | 99% | | {share_within(reached, len(direct_trials), 200) * 100:.0f}% |",
                  f"| direct within 2 s (where possible) | | 99% | {share_within(reached, len(direct_trials), 2) * 100:.0f}% |",
                  f"| relayed within 2 s (where only a relay can) | | 99% | {share_within(relayed, len(relay_trials), 2) * 100:.0f}% |",
                  "", "| trials | n | routable p50 | p90 | p99 | not routable | direct or relayed p50 | p90 | p99 | never | first ping reply p50 | pings answered |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for label, subset in [("all", joins)] + [(f"d{d.number} {d.description}", [r for r in joins if r["domain"] == d.number]) for d in DOMAINS]:
            if not subset:
                continue
            rt = [r["routable_s"] for r in subset if r["routable_s"] is not None]
            path = [r["direct_s"] if r.get("direct_possible") else r["connected_s"] for r in subset]
            done = [v for v in path if v is not None]
            first = [r["first_reply_s"] for r in subset if r["first_reply_s"] is not None]
            sent, answered = sum(r.get("pings", 0) for r in subset), sum(r["replies"] for r in subset)
            lines.append(f"| {label} | {len(subset)} | {fmt(percentile(rt, 50))} | {fmt(percentile(rt, 90))} | "
                         f"{fmt(percentile(rt, 99))} | {len(subset) - len(rt)} | {fmt(percentile(done, 50))} | "
                         f"{fmt(percentile(done, 90))} | {fmt(percentile(done, 99))} | {len(path) - len(done)} | "
                         f"{fmt(percentile(first, 50))} | {answered}/{sent} |")
        lines.append("")
        sim_command, sim, sim_routable = simulate(bed, out)
        svg_cdf(os.path.join(out, "testbed-join.svg"), "Join experiment: time to a route and to a path to the peer",
                [("routable", "#1f77b4", routable, total),
                 ("direct to the peer (where possible)", "#2ca02c", reached, len(direct_trials)),
                 ("relayed to the peer (where only a relay can)", "#ff7f0e", relayed, len(relay_trials)),
                 ("simulator: routable, same shape", "#9467bd", sim_routable, len(sim_routable))],
                [("paper: 90% routable in 10 s", 10, 0.9, "#d62728"), ("paper: 99% direct in 200 s", 200, 0.99, "#d62728"),
                 ("goal: 90% in 1 s", 1, 0.9, "#000"), ("goal: 99% in 2 s", 2, 0.99, "#000")])
        lines += ["![Join CDFs](testbed-join.svg)", "",
                  f"The simulator on the same shape (`{sim_command}`; nodes join one per 100 ms into a growing ring "
                  f"over 20–250 ms round trips, the testbed's joiners into a full ring over a LAN-fast underlay): "
                  f"routable p50 {sim['join_routable_s']['p50']:.2f} s, p90 {sim['join_routable_s']['p90']:.2f} s, "
                  f"p99 {sim['join_routable_s']['p99']:.2f} s; shortcuts for {sim['flows']} new flows p50 {sim['shortcut_s']['p50']:.2f} s, "
                  f"p99 {sim['shortcut_s']['p99']:.2f} s; ring consistent: {sim['ring_consistent']}; delivery "
                  f"{sim['delivery_ratio']:.3f}.", ""]
    moves = read_results(bed.dir, "migrate")
    if moves:
        lines += ["## Migration", "", built_from(moves) + " " +
                  "A workstation's uplink is re-plugged into another domain's LAN (its namespace's veth deleted and "
                  "made again behind the other NAT, a new address there) while its `wow run` keeps running, in the "
                  "middle of a checksummed TCP transfer to a peer's virtual IP (`--rate`, 1 MB/s by default) and an SSH session from it "
                  "to the peer that prints a line every 0.1 s. The longest gap is the longest time between two reads.",
                  "", "| move | transfer | longest gap | SSH session | longest gap |", "|---|---|---|---|---|"]
        for m in moves:
            lines.append(f"| {m['mover']} d{m['from']} → d{m['to']} (peer {m['peer']}) | "
                         f"{'intact' if m['stream_intact'] else 'LOST: ' + str(m.get('error'))} | "
                         f"{fmt(m.get('stream_longest_gap_s'))} s | "
                         f"{'—' if m.get('ssh_intact') is None else ('intact' if m['ssh_intact'] else 'LOST')} | "
                         f"{fmt(m.get('ssh_longest_gap_s'))} s |")
        lines.append("")
    apps_runs = read_results(bed.dir, "apps")
    if apps_runs:
        a = apps_runs[-1]
        lines += ["## Applications", "", built_from([a]) + " " +
                  f"Unmodified Debian programs from the head workstation {a['head']} to the {a['workers']} others, "
                  "through WOW (virtual IPs) and over the underlay directly (the head's LAN neighbours at their LAN "
                  "addresses, everyone else through a port forward to ssh on each NAT in front of it), alternated. "
                  f"*Job farm*: GNU parallel over ssh, one job at a time per worker, {a['jobs']} jobs each hashing "
                  f"{a['job_mb']} MB; every job's output checked. All workers share this machine's 2 cores, so the "
                  "farm is CPU-bound: the ratio shows what the overlay costs per ssh session, not a speed-up. "
                  "*MPI*: `Scripts/testbed-mpi.c` under openmpi's `mpirun` over ssh, one rank per host, TCP only: "
                  "a task farm, 1,000 `MPI_Allreduce`, a 16 MB broadcast, every result checked; once on the head's "
                  "LAN (both networks) and once with one host per domain, which only WOW can run (ranks behind "
                  "different NATs cannot connect to each other over the underlay).", "",
                  "| run | network | job farm, jobs/min | MPI on the LAN, s (farm / allreduce / bcast) | MPI across the six domains, s (farm / allreduce / bcast) |",
                  "|---|---|---|---|---|"]
        for r in sorted({f["round"] for f in a["farm"]}):
            for network in ("wow", "underlay"):
                farm = next((f for f in a["farm"] if f["round"] == r and f["network"] == network), None)
                cells = []
                for name in ("lan", "domains"):
                    m = next((m for m in a["mpi"] if m["round"] == r and m["network"] == network and m["set"] == name), None)
                    cells.append("—" if m is None else (f"{m['total_s']:.2f} ({m['farm_s']:.2f} / {m['allreduce_s']:.2f} / "
                                                        f"{m['bcast_s']:.2f})" if m.get("ok") else "FAILED"))
                lines.append(f"| {r + 1} | {'WOW' if network == 'wow' else 'underlay'} | "
                             f"{farm['jobs_per_minute']:.1f} ({farm['ok']}/{a['jobs']} right) | {cells[0]} | {cells[1]} |")
        lines += ["", "Medians: " + summarize_apps(a).replace("\n", "; ") + ".", ""]
    churns = read_results(bed.dir, "churn")
    if churns:
        c = churns[-1]
        heal = [e["killed_healed_after_s"] for e in c["events"] if e.get("killed_healed_after_s") is not None]
        rejoin = [e["restarted_healed_after_s"] for e in c["events"] if e.get("restarted_healed_after_s") is not None]
        lines += ["## Churn", "", built_from([c]) + " " +
                  f"{c['victims']} router nodes killed (SIGKILL) one after another over {c['minutes']:g} minutes, each "
                  f"restarted {c['down_s']:g} s later, while every workstation pinged the others in turn (one ping "
                  f"a second, 1 s timeout). Pings answered: {c['answered']}/{c['pings']} "
                  f"({c['delivery'] * 100:.2f}%). The ring (every running node's neighbours its true ones, sampled "
                  f"each second) was consistent in {c['ring_consistent_share'] * 100:.0f}% of {c['ring_samples']} "
                  f"samples; after a kill it was whole again in p50 {fmt(percentile(heal, 50))} s (max "
                  f"{fmt(max(heal) if heal else None)} s), after a restart in p50 {fmt(percentile(rejoin, 50))} s. "
                  f"Largest growth of one node over the run: RSS {c['rss_growth_mb_max']:.1f} MB, open fds "
                  f"{c['fds_growth_max']}.", ""]
        if len(c["memory"]) >= 2:
            svg_series(os.path.join(out, "testbed-memory.svg"), "RSS of every node during the churn run (MB)",
                       c["memory"])
            lines += ["![RSS over time](testbed-memory.svg)", ""]
    path = os.path.join(out, "testbed-report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}" + (f" and {os.path.join(out, 'testbed-join.svg')}" if joins else ""))


# --- main ----------------------------------------------------------------------------------------------------

def default_wow():
    for build in ("release", "debug"):
        path = os.path.join(REPO, ".build", build, "wow")
        if os.access(path, os.X_OK):
            return path
    return os.path.join(REPO, ".build", "release", "wow")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--dir", default=os.environ.get("WOW_TESTBED_DIR", "/tmp/wow-testbed"),
                        help="where configs, credentials, logs and results live (default /tmp/wow-testbed)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("up", help="build the namespaces and start every node")
    p.add_argument("--routers", type=int, default=118, help="public router nodes (default 118)")
    p.add_argument("--workstations", type=int, default=33, help="workstations behind the six domains (default 33)")
    p.add_argument("--wow", default=os.environ.get("WOW", default_wow()), help="the wow executable")
    p.add_argument("--batch", type=int, default=10, help="nodes started together (default 10)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between batches (default 0.5)")
    p.add_argument("--settle", type=float, default=120, help="seconds the ring may take to converge (default 120)")
    p.add_argument("--log-level", default="notice", help="the nodes' log level (default notice)")
    p.add_argument("--shared-udp-port", action="store_true",
                   help="every workstation on udp 4000, as nodes left at the default port behind one office NAT "
                        "(default: a port of its own each)")
    p.add_argument("--keys", help="reuse the CA and node keys in this directory (an earlier run's keys/, copied "
                                  "away before `up` deletes --dir): the same ring layout again")
    p.set_defaults(func=up)
    commands.add_parser("down", help="stop every node and delete every namespace").set_defaults(func=down)
    commands.add_parser("status", help="who runs, the ring, the workstations' connections").set_defaults(func=show_status)
    p = commands.add_parser("measure", help="RSS, open fds and idle CPU of every node")
    p.add_argument("--seconds", type=float, default=30, help="how long to measure CPU (default 30)")
    p.set_defaults(func=measure)
    p = commands.add_parser("report", help="write testbed-report.md and its SVG plots from the results")
    p.add_argument("--out", default=os.path.join(REPO, "docs"), help="where to write them (default docs/)")
    p.set_defaults(func=report)
    p = commands.add_parser("run", help="run an experiment")
    experiments = p.add_subparsers(dest="experiment", required=True)
    e = experiments.add_parser("join", help="fresh workstations join, timed")
    e.add_argument("--trials", type=int, default=300)
    e.add_argument("--deadline", type=float, default=30, help="seconds a trial may take (default 30)")
    e.add_argument("--domains", type=lambda v: [int(x) for x in v.split(",")], metavar="D,D,...",
                   help="start the joiners only in these domains (default: each in turn)")
    e.set_defaults(func=join)
    e = experiments.add_parser("migrate", help="a workstation moves to another domain mid-transfer")
    e.add_argument("--mover", default="d2-w1", help="the workstation that moves (default d2-w1)")
    e.add_argument("--peer", default="d1-w1", help="the workstation it talks to (default d1-w1)")
    e.add_argument("--to", type=int, default=6, help="the domain it moves to (default 6, the nested NATs)")
    e.add_argument("--seconds", type=float, default=30, help="how long the transfer and the SSH session run")
    e.add_argument("--rate", type=int, default=1_000_000, help="the transfer's bytes per second (default 1 MB/s)")
    e.add_argument("--no-ssh", action="store_true", help="only the TCP transfer")
    e.set_defaults(func=migrate)
    e = experiments.add_parser("apps", help="a job farm (GNU parallel over ssh) and an MPI job, WOW vs the underlay")
    e.add_argument("--head", default="d1-w1", help="the workstation that runs parallel and mpirun (default d1-w1)")
    e.add_argument("--jobs", type=int, default=330, help="jobs in the farm (default 330: 10 per workstation)")
    e.add_argument("--job-mb", type=int, default=64, help="MB each job hashes (default 64, ~0.3 s of CPU)")
    e.add_argument("--rounds", type=int, default=2, help="WOW and underlay runs, alternated (default 2 each)")
    e.add_argument("--mpi-ranks", type=int, default=6, help="ranks per MPI run, the head's included (default 6)")
    e.add_argument("--mpi-tasks", type=int, default=500, help="tasks in the MPI job's farm (default 500)")
    e.add_argument("--mpi-iterations", type=int, default=4_000_000, help="work per MPI task (default 4,000,000)")
    e.add_argument("--mpi-rounds", type=int, default=1000, help="MPI_Allreduce rounds (default 1000)")
    e.add_argument("--mpi-bytes", type=int, default=16_000_000, help="bytes broadcast (default 16,000,000)")
    e.add_argument("--mpi-timeout", type=float, default=600, help="seconds an MPI run may take (default 600)")
    e.set_defaults(func=apps)
    e = experiments.add_parser("churn", help="routers are killed and restarted while workstations ping")
    e.add_argument("--minutes", type=float, default=5, help="how long the kills are spread over (default 5)")
    e.add_argument("--fraction", type=float, default=0.1, help="the share of routers killed (default 0.1)")
    e.add_argument("--down", type=float, default=10, help="seconds a killed router stays down (default 10)")
    e.add_argument("--settle", type=float, default=20, help="seconds of pinging before the first kill and after the last")
    e.add_argument("--ping-interval", type=float, default=1, help="seconds between a workstation's pings (default 1)")
    e.add_argument("--seed", type=int, default=1)
    e.set_defaults(func=churn)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("testbed.py needs root (it creates network namespaces and iptables rules)", file=sys.stderr)
        return 2
    try:
        args.func(args)
    except Failure as failure:
        print(f"testbed.py: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
