#!/usr/bin/env python3
"""Long runs (issue 20): N secured `wow run` processes on loopback for an hour, with churn and traffic, to
show that no node's memory, open fds or protocol timers grow without bound. No root: every node listens on
127.0.0.1 only and runs without a virtual network device.

    Scripts/long-run.py run [--nodes 50] [--minutes 60] [--churn-every 300] [--churn-fraction 0.1]
                            [--sample-every 30] [--dir /tmp/wow-long-run] [--wow PATH]
    Scripts/long-run.py report [--dir D] [--out DIR]     the report again from D's data (into DIR, default D)
    Scripts/long-run.py down [--dir D]                   stop what a run in D left running (DIR/pids)

`run` makes one CA and, per node, a key and a membership certificate with the CLI (`wow ca init`, `wow keygen`,
`wow cert issue`, virtual IP 100.64.1.1, 100.64.1.2, ...), writes a config per node (udp, tcp and tls on
127.0.0.1 at --base-port + 3*i, +1, +2, and relay; n0 and n1 are the bootstraps every other node lists), starts
them, and waits until the ring is consistent (every node's left and right neighbours its true ones): from there
the run lasts --minutes. Meanwhile:

  traffic   --pings-per-second overlay echoes in all, each from a random routable node to a random other node
            (by ring address), through the node's control socket: the `ping` command `wow ping` sends, one echo
            each, --ping-timeout to answer. A ping whose source or destination was killed, restarting or not yet
            routable again when it was sent or answered counts apart ("churn-affected"), not in the delivery
            ratio; every other ping counts, also one routed through a node that was just killed.
  churn     every --churn-every s, --churn-fraction of the non-bootstrap nodes (at least one) get SIGKILL and are
            started again at once, same config and identity (a new incarnation); for each, when its control
            socket answered and when it was routable again; then when the whole ring was consistent again.
  sampling  every --sample-every s, per running node: RSS (VmRSS), open fds, threads, CPU seconds from /proc,
            and from its `status`: timers (pending protocol timers; absent from builds before the field),
            connections, shortcuts, end-to-end sessions, ring_member and whether it is routable.

Everything lives in --dir: keys/, configs/, logs/ (one per node, every incarnation appended), ctl/ (control
sockets), bin/wow (a copy of the binary, so that a rebuild during the run changes no node), pids, meta.json,
events.jsonl, samples.jsonl, pings.jsonl; at the end report.md and the SVG plots long-run-*.svg. Every process
the script starts is stopped by PID when it ends, on SIGINT/SIGTERM/SIGHUP and on an error (and the nodes get
SIGKILL from the kernel if the script itself is killed: setpriv --pdeathsig).
"""
import argparse
import importlib.util
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _testbed():
    """Scripts/testbed.py as a module, for its /proc readers and control-socket helpers (no __pycache__ left in
    Scripts/)."""
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location("wow_testbed", os.path.join(HERE, "testbed.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tb = _testbed()
rss_mb, open_fds, cpu_seconds, node_status = _tb.rss_mb, _tb.open_fds, _tb.cpu_seconds, _tb.status
ring_neighbours, alive, percentile, stop_pids = _tb.ring_neighbours, _tb.alive, _tb.percentile, _tb.stop_pids

BOOTSTRAPS = 2
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL

# Growth verdicts: the last window's mean over the first's, for the nodes never restarted. "grows" when it
# exceeds the first by more than both the share and the absolute amount.
THRESHOLDS = {
    "rss_mb": (0.10, 2.0, "MB"),
    "fds": (0.10, 2.0, "fds"),
    "timers": (0.10, 5.0, "timers"),
    "connections": (0.10, 2.0, "connections"),
    "e2e_sessions": (0.10, 2.0, "sessions"),
    "threads": (0.10, 1.0, "threads"),
}
METRIC_LABELS = {
    "rss_mb": "RSS (MB)", "fds": "open fds", "timers": "pending protocol timers", "connections": "connections",
    "e2e_sessions": "end-to-end sessions", "threads": "threads",
}


class Failure(Exception):
    pass


class Interrupted(Exception):
    pass


# --- small helpers -------------------------------------------------------------------------------------------

def run_cli(*argv):
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise Failure(f"`{' '.join(argv)}` failed ({result.returncode}): {result.stdout.strip()[-500:]}")
    return result.stdout


def control(path, command, timeout):
    """One command over a node's control socket: (answer object, None) or (None, why not)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        answer = json.loads(b"".join(chunks))
    except (OSError, ValueError) as error:
        return None, f"control socket: {error.__class__.__name__}: {error}"
    if isinstance(answer, dict) and "error" in answer:
        return None, f"node: {answer['error']}"
    return answer, None


def threads_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def is_structured(connection):
    return any(t.startswith("structured") for t in connection["local_types"] + connection["remote_types"])


def is_shortcut(connection):
    return "structured.shortcut" in connection["local_types"] + connection["remote_types"]


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass  # a line cut off by an interrupted run
    return records


class JsonlWriter:
    def __init__(self, path):
        self.file = open(path, "a")
        self.lock = threading.Lock()

    def write(self, record):
        with self.lock:
            self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.file.flush()

    def close(self):
        with self.lock:
            self.file.close()


def port_free(port):
    """Whether a node could listen on PORT of 127.0.0.1 (tcp: as the node binds, with SO_REUSEADDR, so that
    connections of an earlier run in TIME-WAIT do not count; only a listener does)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def git_build():
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    return head, bool(dirty)


# --- the run -------------------------------------------------------------------------------------------------

class Node:
    def __init__(self, index, directory, base_port):
        self.index = index
        self.name = f"n{index}"
        self.port = base_port + 3 * index
        self.vip = f"100.64.{1 + index // 250}.{1 + index % 250}"
        self.bootstrap = index < BOOTSTRAPS
        self.config = os.path.join(directory, "configs", f"{self.name}.yml")
        self.control = os.path.join(directory, "ctl", f"{self.name}.sock")
        self.log = os.path.join(directory, "logs", f"{self.name}.log")
        self.address = None
        self.process = None
        self.incarnation = -1
        self.state = "new"          # up (routable, or never churned), down (killed), recovering (restarted)
        self.started_at = None
        self.killed_by_us = False

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def uris(self):
        return [f"udp://127.0.0.1:{self.port}", f"tcp://127.0.0.1:{self.port + 1}", f"tls://127.0.0.1:{self.port + 2}"]


class LongRun:
    def __init__(self, args):
        self.args = args
        self.dir = os.path.abspath(args.dir)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sequence = itertools.count(1)
        self.rng = random.Random(args.seed)
        self.nodes = []
        self.t0 = None
        self.threads = []
        self.writers = {}
        self.meta = {}
        self.interval = {"sent": 0, "answered": 0, "affected_sent": 0, "affected_answered": 0}
        self.timers_seen = None
        self.critical = 0            # > 0 while the main thread starts or kills a process
        self.pending_signal = None   # a signal that came meanwhile, raised when it is done

    def on_signal(self, number, frame):
        name = signal.Signals(number).name
        if self.critical:
            self.pending_signal = name
            return
        raise Interrupted(name)

    def enter_critical(self):
        self.critical += 1

    def leave_critical(self):
        self.critical -= 1
        if self.critical == 0 and self.pending_signal:
            name, self.pending_signal = self.pending_signal, None
            raise Interrupted(name)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def clock(self):
        return time.monotonic() - self.t0

    def say(self, text):
        stamp = f"{self.clock():7.1f} s  " if self.t0 is not None else ""
        print(stamp + text, flush=True)

    def save_meta(self):
        tmp = self.path("meta.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.meta, f, indent=1)
        os.replace(tmp, self.path("meta.json"))

    def event(self, kind, **fields):
        record = {"t": round(self.clock(), 3), "kind": kind, **fields}
        self.writers["events"].write(record)
        return record

    # --- preparation -----------------------------------------------------------------------------------------

    def prepare(self):
        a = self.args
        if a.nodes < 3:
            raise Failure(f"--nodes must be at least 3 (two bootstraps and one node to churn), got {a.nodes}")
        if a.nodes > 1000:
            raise Failure(f"--nodes must be at most 1000, got {a.nodes}")
        for option in ("minutes", "churn_every", "churn_fraction", "sample_every", "pings_per_second", "ping_timeout",
                       "settle_timeout"):
            if not math.isfinite(getattr(a, option)):
                raise Failure(f"--{option.replace('_', '-')} must be a finite number")
        if a.minutes <= 0:
            raise Failure(f"--minutes must be more than 0, got {a.minutes:g}")
        if a.churn_every <= 0 or a.sample_every <= 0:
            raise Failure("--churn-every and --sample-every must be more than 0 seconds")
        if a.sample_every < 2:
            raise Failure(f"--sample-every must be at least 2 s (each sample asks every node), got {a.sample_every:g}")
        if not 0 <= a.churn_fraction <= 1:
            raise Failure(f"--churn-fraction must be 0 ... 1, got {a.churn_fraction:g}")
        if not 0 < a.pings_per_second <= 100:
            raise Failure(f"--pings-per-second must be more than 0 and at most 100, got {a.pings_per_second:g}")
        if not 0.1 <= a.ping_timeout <= 60:
            raise Failure(f"--ping-timeout must be 0.1 ... 60 s, got {a.ping_timeout:g}")
        top = a.base_port + 3 * a.nodes - 1
        if a.base_port < 1024 or top > 65535:
            raise Failure(f"ports {a.base_port}...{top} (--base-port + 3 per node) must lie within 1024...65535")
        wow = os.path.abspath(a.wow)
        if not os.path.isfile(wow) or not os.access(wow, os.X_OK):
            raise Failure(f"no wow executable at {wow}: build it (`swift build -c release`) or pass --wow PATH")
        if len(self.path("ctl", f"n{a.nodes - 1}.sock")) > SOCKET_PATH_MAX:
            raise Failure(f"--dir {self.dir} is too long for the nodes' control sockets (at most "
                          f"{SOCKET_PATH_MAX} bytes for {self.path('ctl', 'nNN.sock')}): choose a shorter one")
        if os.path.exists(self.dir):
            if not os.path.isdir(self.dir):
                raise Failure(f"--dir {self.dir} exists and is not a directory")
            controller = running_controller(self.dir)
            if controller:
                raise Failure(f"a run in {self.dir} is still going (long-run.py, PID {controller}): "
                              f"`{sys.argv[0]} down --dir {self.dir}` stops it")
            running = recorded_processes(self.dir)
            if running:
                raise Failure(f"a run in {self.dir} still has {len(running)} processes ({', '.join(map(str, running[:5]))}"
                              f"{', ...' if len(running) > 5 else ''}): `{sys.argv[0]} down --dir {self.dir}` stops them")
            entries = os.listdir(self.dir)
            if entries and not ({"meta.json", "pids"} & set(entries)):
                raise Failure(f"--dir {self.dir} exists, is not empty and holds no earlier long run (no meta.json): "
                              "choose another directory; this script empties the one it uses")
            shutil.rmtree(self.dir)
        low, high = (int(v) for v in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        if a.base_port <= high and top >= low:
            print(f"long-run.py: warning: ports {a.base_port}...{top} overlap the ephemeral range {low}...{high}: an "
                  "outgoing connection may take a node's port while it restarts", file=sys.stderr)
        busy = [p for p in range(a.base_port, top + 1) if not port_free(p)]
        if busy:
            raise Failure(f"port{'s' if len(busy) > 1 else ''} {', '.join(map(str, busy[:5]))} on 127.0.0.1 "
                          f"already in use: choose another --base-port")
        for sub in ("keys", "configs", "logs", "ctl", "bin"):
            os.makedirs(self.path(sub))
        # A copy of the binary: a rebuild during the run must not change the nodes restarted later.
        shutil.copy2(wow, self.path("bin", "wow"))
        self.wow = self.path("bin", "wow")
        probe = subprocess.run([self.wow, "run", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if probe.returncode != 0 or "--control" not in probe.stdout:
            raise Failure(f"{wow} does not look like wow (`wow run --help` said: {probe.stdout.strip()[:200]})")
        self.setpriv = shutil.which("setpriv")
        head, dirty = git_build()
        stat = os.stat(wow)
        self.meta = {
            "version": 1, "started_wall": time.time(), "controller_pid": os.getpid(), "commit": head, "dirty": dirty,
            "wow": wow, "wow_mtime": stat.st_mtime, "wow_size": stat.st_size,
            "nodes": a.nodes, "minutes": a.minutes, "churn_every_s": a.churn_every, "churn_fraction": a.churn_fraction,
            "sample_every_s": a.sample_every, "pings_per_second": a.pings_per_second, "ping_timeout_s": a.ping_timeout,
            "base_port": a.base_port, "seed": a.seed, "log_level": a.log_level,
            "settled_t": None, "end_t": None, "finished": False, "outcome": "running",
        }
        self.nodes = [Node(i, self.dir, a.base_port) for i in range(a.nodes)]
        self.meta["node_names"] = [n.name for n in self.nodes]
        self.meta["bootstraps"] = [n.name for n in self.nodes[:BOOTSTRAPS]]
        self.save_meta()
        for name in ("events", "samples", "pings"):
            self.writers[name] = JsonlWriter(self.path(f"{name}.jsonl"))
        open(self.path("pids"), "a").close()

        started = time.time()
        run_cli(self.wow, "ca", "init", "--name", "long-run", "--dir", self.path("keys"))
        for n in self.nodes:
            key, crt = self.path("keys", f"{n.name}.key"), self.path("keys", f"{n.name}.crt")
            run_cli(self.wow, "keygen", "--out", key)
            run_cli(self.wow, "cert", "issue", "--ca-key", self.path("keys", "ca.key"), "--node-key", key, "--name",
                    n.name, "--vip", n.vip, "--days", "30", "--out", crt)
            self.write_config(n)
        print(f"credentials and configs for {a.nodes} nodes ({time.time() - started:.1f} s); build {head}"
              f"{' with uncommitted changes' if dirty else ''}, {wow}", flush=True)

    def write_config(self, n):
        bootstrap = [] if n.index == 0 else [u for b in self.nodes[:BOOTSTRAPS] if b is not n for u in b.uris()]
        key, crt = self.path("keys", f"{n.name}.key"), self.path("keys", f"{n.name}.crt")
        lines = [
            f"node: {{ name: {n.name} }}",
            f"security: {{ ca: {self.path('keys', 'ca.crt')}, certificate: {crt}, key: {key} }}",
            "bootstrap: [" + ", ".join(f'"{u}"' for u in bootstrap) + "]",
            "transports:",
            f'  - {{ scheme: udp, settings: {{ listen: "127.0.0.1:{n.port}" }} }}',
            f'  - {{ scheme: tcp, settings: {{ listen: "127.0.0.1:{n.port + 1}" }} }}',
            f'  - {{ scheme: tls, settings: {{ listen: "127.0.0.1:{n.port + 2}" }} }}',
            "  - { scheme: relay }",
        ]
        with open(n.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    # --- processes -------------------------------------------------------------------------------------------

    def start(self, n):
        """Starts N's `wow run` (a new incarnation). Only the main thread starts processes: the kernel's
        parent-death signal follows the thread that forked."""
        assert threading.current_thread() is threading.main_thread()
        if os.path.exists(n.control):
            os.remove(n.control)
        self.enter_critical()
        try:
            self._start(n)
        finally:
            self.leave_critical()
        return n.process

    def _start(self, n):
        n.incarnation += 1
        with open(n.log, "ab") as log:
            log.write(f"=== long-run.py: incarnation {n.incarnation} started at {self.clock():.1f} s ===\n".encode())
            log.flush()
            argv = [self.wow, "run", "--config", n.config, "--control", n.control, "--log-level", self.args.log_level]
            if self.setpriv:
                argv = [self.setpriv, "--pdeathsig", "KILL", "--"] + argv
            n.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=self.dir)
        n.started_at = self.clock()
        n.killed_by_us = False
        with open(self.path("pids"), "a") as f:
            f.write(f"{n.process.pid} {n.name} {n.incarnation}\n")

    def kill(self, n):
        """SIGKILL, as a crash; reaps the process."""
        self.enter_critical()
        try:
            n.killed_by_us = True
            try:
                n.process.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            n.process.wait()
        finally:
            self.leave_critical()

    def stop_all(self):
        """Every process this run started: SIGTERM (peers get a goodbye), SIGKILL after 5 s."""
        processes = [n.process for n in self.nodes if n.process and n.process.poll() is None]
        for p in processes:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        for p in processes:
            try:
                p.wait(timeout=max(0.05, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for n in self.nodes:
            if n.process:
                n.process.poll()
            if os.path.exists(n.control):
                os.remove(n.control)
        left = recorded_processes(self.dir)
        for pid in left:  # nothing should be left; this is the last resort
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        with open(self.path("pids"), "w"):
            pass
        return len(processes)

    def wait_control(self, nodes, timeout):
        deadline = time.monotonic() + timeout
        waiting = list(nodes)
        while waiting:
            for n in list(waiting):
                if n.process.poll() is not None:
                    raise Failure(f"{n.name} exited ({n.process.returncode}) at start: {log_tail(n.log)}")
                if node_status(n.control, timeout=2) is not None:
                    waiting.remove(n)
            if waiting and time.monotonic() > deadline:
                raise Failure(f"{', '.join(n.name for n in waiting)} never answered on the control socket "
                              f"within {timeout:g} s: {log_tail(waiting[0].log)}")
            if waiting:
                time.sleep(0.1)

    # --- ring ------------------------------------------------------------------------------------------------

    def live_addresses(self):
        with self.lock:
            return [n.address for n in self.nodes if n.address and n.process and alive(n.process.pid)]

    def routable(self, n, status_answer, addresses):
        if status_answer is None or not status_answer.get("ring_member"):
            return False
        want = ring_neighbours(n.address, addresses)
        return {status_answer.get("left_neighbour"), status_answer.get("right_neighbour")} - {None} == want

    def ring_check(self, restarted=None):
        """Names of running nodes that are not routable (an empty list: the ring is consistent). RESTARTED maps
        the addresses of restarted nodes to when they were started: a node whose ring neighbour is one of them
        must also have heard from it since (its connection is not a stale one to the killed incarnation, which
        has the same address)."""
        addresses = self.live_addresses()
        with self.lock:
            running = [n for n in self.nodes if n.process and alive(n.process.pid)]
        bad = []
        for n in running:
            s = node_status(n.control, timeout=2)
            now = self.clock()
            if not self.routable(n, s, addresses):
                bad.append(n.name)
                continue
            neighbours = {s.get("left_neighbour"), s.get("right_neighbour")}
            for c in s.get("connections", []) if restarted else []:
                if c["peer"] in neighbours and c["peer"] in restarted and c["silent_s"] > now - restarted[c["peer"]]:
                    bad.append(f"{n.name} (stale)")
                    break
        return bad

    # --- threads ---------------------------------------------------------------------------------------------

    def spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def sampler(self):
        k = 1  # the first sample one interval after the first start (at 0 nothing runs yet)
        while not self.stop.is_set():
            at = k * self.args.sample_every
            wait = at - self.clock()
            if wait > 0 and self.stop.wait(wait):
                break
            try:
                self.sample(k, at)
            except Exception as error:  # a sample must never end the run
                self.say(f"sample {k} failed: {error!r}")
            k += 1
            if self.clock() > k * self.args.sample_every:  # a sample took longer than the interval: skip, no bunching
                k = int(self.clock() // self.args.sample_every) + 1

    def sample(self, k, at):
        with self.lock:
            snapshot = [(n, n.process.pid if n.process else None, n.incarnation, n.state) for n in self.nodes]
            counts, self.interval = self.interval, {key: 0 for key in self.interval}
        addresses = self.live_addresses()
        rows = []
        for n, pid, incarnation, state in snapshot:
            if self.stop.is_set():
                return
            if pid is None or not alive(pid):
                continue
            s = node_status(n.control, timeout=3)
            record = {"k": k, "t": round(at, 1), "at": round(self.clock(), 2), "node": n.name, "inc": incarnation,
                      "pid": pid, "state": state, "bootstrap": n.bootstrap,
                      "rss_mb": rss_mb(pid), "fds": open_fds(pid), "threads": threads_of(pid), "cpu_s": cpu_seconds(pid),
                      "status": s is not None}
            if s is not None:
                connections = s.get("connections", [])
                security = s.get("security") or {}
                record.update({
                    "timers": s.get("timers"), "connections": len(connections),
                    "structured": sum(1 for c in connections if is_structured(c)),
                    "shortcuts": sum(1 for c in connections if is_shortcut(c)),
                    "relayed": sum(1 for c in connections if c.get("relayed_via")),
                    "e2e_sessions": security.get("end_to_end_sessions"), "secure_edges": security.get("secure_edges"),
                    "ring_member": s.get("ring_member"), "routable": self.routable(n, s, addresses),
                    "held_for_route": s.get("held_for_route"), "uptime_s": s.get("uptime_s"),
                    "drops_total": sum((s.get("drops") or {}).values()),
                })
                if self.timers_seen is None:
                    self.timers_seen = "timers" in s
            self.writers["samples"].write(record)
            rows.append(record)

        def stat(key):
            values = [r[key] for r in rows if r.get(key) is not None]
            return f"{statistics.median(values):.0f}/{max(values):.0f}" if values else "-"
        rss = [r["rss_mb"] for r in rows if r["rss_mb"] is not None]
        routable = sum(1 for r in rows if r.get("routable"))
        self.say(f"sample {k}: {len(rows)} running, {routable} routable; RSS MB median/max "
                 f"{statistics.median(rss) if rss else 0:.1f}/{max(rss) if rss else 0:.1f}, fds {stat('fds')}, "
                 f"timers {stat('timers') if self.timers_seen else 'n/a'}, connections {stat('connections')}; pings "
                 f"{counts['answered']}/{counts['sent']}"
                 + (f" (+{counts['affected_answered']}/{counts['affected_sent']} churn-affected)" if counts["affected_sent"] else ""))

    def pinger(self, k, period):
        rng = random.Random(self.args.seed * 7919 + k)
        timeout_ms = int(self.args.ping_timeout * 1000)
        next_at = time.monotonic() + rng.random() * period
        while not self.stop.is_set():
            wait = next_at - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                break
            next_at = max(next_at + period, time.monotonic())
            with self.lock:
                sources = [n for n in self.nodes if n.state == "up" and n.address]
                if len(sources) < 1:
                    continue
                src = rng.choice(sources)
                dst = rng.choice([n for n in self.nodes if n is not src and n.address])
                before = (src.state, src.incarnation, dst.state, dst.incarnation)
                sequence = next(self.sequence)
            t = self.clock()
            answer, error = control(src.control, f"ping {dst.address} {sequence} {timeout_ms}",
                                    timeout=self.args.ping_timeout + 5)
            done = self.clock()
            with self.lock:
                after = (src.state, src.incarnation, dst.state, dst.incarnation)
                affected = before != after or before[0] != "up" or before[2] != "up"
                ok = answer is not None and answer.get("rtt_ms") is not None
                self.interval["affected_sent" if affected else "sent"] += 1
                if ok:
                    self.interval["affected_answered" if affected else "answered"] += 1
            record = {"t": round(t, 3), "done": round(done, 3), "src": src.name, "dst": dst.name, "ok": ok,
                      "affected": affected, "src_state": before[0], "dst_state": before[2]}
            if affected:
                record["after"] = [after[0], after[2]]
            if ok:
                record.update({"rtt_ms": round(answer["rtt_ms"], 3), "hops": [answer.get("hops_there"), answer.get("hops_back")],
                               "direct": answer.get("direct")})
            else:
                record["failure"] = error or (answer or {}).get("failure") or "no reply"
            self.writers["pings"].write(record)

    def watch_recovery(self, number, victims, killed_at, deadline):
        """After churn event NUMBER: when each restarted node's control socket answered and when it was routable
        again (from its restart), then when the whole ring was consistent again (from the kill)."""
        pending = {n.name: n for n in victims}
        answered = set()
        while pending and not self.stop.is_set() and self.clock() < deadline:
            addresses = self.live_addresses()
            for n in list(pending.values()):
                s = node_status(n.control, timeout=1)
                now = self.clock()
                if s is not None and n.name not in answered:
                    answered.add(n.name)
                    self.event("control", churn=number, node=n.name, inc=n.incarnation, after_s=round(now - n.started_at, 3))
                if self.routable(n, s, addresses):
                    with self.lock:
                        n.state = "up"
                    del pending[n.name]
                    self.event("routable", churn=number, node=n.name, inc=n.incarnation, after_s=round(now - n.started_at, 3))
            if pending:  # finely at first: restarts on loopback take a fraction of a second
                self.stop.wait(0.02 if self.clock() - killed_at < 3 else 0.25)
        for n in pending.values():
            with self.lock:
                n.state = "up"  # counted again from here: a node that never heals must show in the delivery ratio
            if not self.stop.is_set():
                self.event("not_routable", churn=number, node=n.name, inc=n.incarnation,
                           within_s=round(self.clock() - n.started_at, 1))
                self.say(f"churn {number}: {n.name} not routable within {self.clock() - n.started_at:.0f} s")
        restarted = {n.address: n.started_at for n in victims}
        while not self.stop.is_set() and self.clock() < deadline:
            bad = self.ring_check(restarted)
            if not bad:
                self.event("ring_whole", churn=number, after_s=round(self.clock() - killed_at, 3))
                return
            self.stop.wait(0.25)
        if not self.stop.is_set():
            bad = self.ring_check(restarted)
            self.event("ring_not_whole", churn=number, within_s=round(self.clock() - killed_at, 1), nodes=bad)
            self.say(f"churn {number}: ring not consistent within {self.clock() - killed_at:.0f} s: {', '.join(bad[:8])}")

    # --- main ------------------------------------------------------------------------------------------------

    def churn(self, number, deadline):
        with self.lock:
            candidates = [n for n in self.nodes if not n.bootstrap and n.state == "up"]
        count = min(len(candidates), max(1, round((len(self.nodes) - BOOTSTRAPS) * self.args.churn_fraction)))
        if count == 0 or self.args.churn_fraction == 0:
            return
        victims = sorted(self.rng.sample(candidates, count), key=lambda n: n.index)
        killed_at = self.clock()
        for n in victims:
            with self.lock:
                n.state = "down"
            pid = n.pid
            self.kill(n)
            self.event("kill", churn=number, node=n.name, inc=n.incarnation, pid=pid)
        for n in victims:
            self.start(n)
            with self.lock:
                n.state = "recovering"
            self.event("restart", churn=number, node=n.name, inc=n.incarnation, pid=n.pid)
        self.say(f"churn {number}: killed and restarted {', '.join(n.name for n in victims)}")
        self.spawn(self.watch_recovery, number, victims, killed_at, deadline)

    def restart_crashed(self):
        for n in self.nodes:
            if n.process and not n.killed_by_us and n.process.poll() is not None:
                code = n.process.returncode
                self.event("crash", node=n.name, inc=n.incarnation, pid=n.pid, returncode=code, log=log_tail(n.log))
                self.say(f"{n.name} (incarnation {n.incarnation}) exited by itself ({code}): restarting it. "
                         f"{log_tail(n.log)}")
                with self.lock:
                    n.state = "down"
                self.start(n)
                with self.lock:
                    n.state = "recovering"
                self.event("restart", churn=None, node=n.name, inc=n.incarnation, pid=n.pid)
                self.spawn(self.watch_recovery, None, [n], self.clock(), self.clock() + 120)

    def run(self):
        a = self.args
        self.t0 = time.monotonic()
        self.meta["t0_wall"] = time.time()
        self.save_meta()
        self.spawn(self.sampler)
        # The bootstraps one after the other, then the rest ten at a time.
        for n in self.nodes[:BOOTSTRAPS]:
            self.start(n)
            self.wait_control([n], 30)
        rest = self.nodes[BOOTSTRAPS:]
        for i in range(0, len(rest), 10):
            batch = rest[i:i + 10]
            for n in batch:
                self.start(n)
            self.wait_control(batch, 30)
            time.sleep(0.5)
        for n in self.nodes:
            s = node_status(n.control)
            if s is None or not s.get("address"):
                raise Failure(f"{n.name} stopped answering on its control socket: {log_tail(n.log)}")
            with self.lock:
                n.address, n.state = s["address"], "up"
        self.meta["addresses"] = {n.name: n.address for n in self.nodes}
        self.event("started", nodes=len(self.nodes))
        self.say(f"started {len(self.nodes)} nodes; waiting for the ring (at most {a.settle_timeout:g} s)")
        deadline = self.clock() + a.settle_timeout
        while True:
            self.restart_crashed()
            bad = self.ring_check()
            if not bad:
                break
            if self.clock() > deadline:
                raise Failure(f"the ring did not become consistent within {a.settle_timeout:g} s of the last start; "
                              f"not routable: {', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}")
            time.sleep(1)
        settled = self.clock()
        self.meta["settled_t"] = round(settled, 3)
        self.save_meta()
        self.event("settled")
        end = settled + a.minutes * 60
        self.meta["planned_end_t"] = round(end, 3)
        self.save_meta()
        self.say(f"ring consistent: the run lasts {a.minutes:g} min from here; churn every {a.churn_every:g} s, "
                 f"{a.pings_per_second:g} pings/s")
        workers = max(1, math.ceil(a.pings_per_second * (a.ping_timeout + 0.5)))
        for k in range(workers):
            self.spawn(self.pinger, k, workers / a.pings_per_second)
        churns = [settled + j * a.churn_every for j in range(1, int(a.minutes * 60 // a.churn_every) + 1)
                  if settled + j * a.churn_every < end - 1]
        number = 0
        while self.clock() < end:
            self.restart_crashed()
            if churns and self.clock() >= churns[0]:
                churns.pop(0)
                number += 1
                next_churn = churns[0] if churns else end
                self.churn(number, min(next_churn, end) - 2)
            time.sleep(0.2)
        self.meta["end_t"] = round(self.clock(), 3)
        self.meta["outcome"] = "completed"
        self.event("end")
        self.say("run complete")

    def close(self, outcome=None):
        """Stops the threads and every process; records how the run ended."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.args.ping_timeout + 6)
        stopped = self.stop_all() if self.nodes else 0
        if self.meta:
            if outcome:
                self.meta["outcome"] = outcome
            if self.meta.get("end_t") is None and self.t0 is not None:
                self.meta["end_t"] = round(self.clock(), 3)
            self.meta["finished"] = True
            self.meta["timers_in_status"] = self.timers_seen
            self.meta["stopped_wall"] = time.time()
            self.save_meta()
        for writer in self.writers.values():
            writer.close()
        return stopped


def log_tail(path, lines=3):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4000))
            text = f.read().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])
    except OSError:
        return "(no log)"


def running_controller(directory):
    """The PID of the long-run.py that runs in DIRECTORY, if it still runs."""
    try:
        with open(os.path.join(directory, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    pid = meta.get("controller_pid")
    if not pid or meta.get("finished") or pid == os.getpid() or not alive(pid):
        return None
    return pid if any(arg.endswith(b"long-run.py") for arg in cmdline(pid)) else None


def recorded_processes(directory):
    """PIDs in DIRECTORY/pids that still run a `wow run` of this directory (a PID reused by another program is
    left alone)."""
    path = os.path.join(directory, "pids")
    if not os.path.exists(path):
        return []
    marker = os.path.join(os.path.abspath(directory), "configs").encode()
    pids = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields or not fields[0].isdigit():
                continue
            pid = int(fields[0])
            argv = cmdline(pid)
            if alive(pid) and b"run" in argv and any(arg.startswith(marker) for arg in argv):
                pids.append(pid)
    return sorted(set(pids))


def command_run(args):
    run = LongRun(args)
    # A signal ignored when the script started (SIGHUP under nohup) stays ignored.
    previous = {s: signal.signal(s, run.on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(s) != signal.SIG_IGN}
    outcome, error = "completed", None
    try:
        run.prepare()
        run.run()
    except Interrupted as interrupt:
        outcome = f"interrupted ({interrupt})"
        print(f"\nlong-run.py: {interrupt}: stopping every node", file=sys.stderr, flush=True)
    except Failure as failure:
        outcome, error = f"failed: {failure}", failure
    except BaseException as unexpected:
        outcome = f"failed: {unexpected!r}"
        raise
    finally:
        # No second signal may cut the cleanup short.
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        stopped = run.close(outcome if outcome != "completed" else None)
        if stopped:
            print(f"stopped {stopped} node processes", flush=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if run.meta.get("settled_t") is not None:
        try:
            out = write_report(run.dir, run.dir)
            print(f"wrote {out}", flush=True)
        except Exception as report_error:
            print(f"long-run.py: the report failed: {report_error!r}", file=sys.stderr)
    if error:
        raise error
    return 0 if outcome == "completed" else 130


def command_down(args):
    directory = os.path.abspath(args.dir)
    if not os.path.isdir(directory):
        raise Failure(f"no long-run directory at {directory}")
    controller = running_controller(directory)
    if controller:
        # The run itself stops its nodes and writes its report when told to.
        os.kill(controller, signal.SIGTERM)
        deadline = time.time() + 30
        while alive(controller) and time.time() < deadline:
            time.sleep(0.2)
        print(f"long-run.py (PID {controller}) " + ("stopped" if not alive(controller) else "did not stop within 30 s"))
    pids = recorded_processes(directory)
    stop_pids(pids)
    ctl = os.path.join(directory, "ctl")
    if os.path.isdir(ctl):
        for name in os.listdir(ctl):
            if name.endswith(".sock"):
                os.remove(os.path.join(ctl, name))
    if os.path.exists(os.path.join(directory, "pids")):
        with open(os.path.join(directory, "pids"), "w"):
            pass
    print(f"{len(pids)} processes stopped" + (f" ({', '.join(map(str, pids))})" if pids else ""))
    return 0


# --- report --------------------------------------------------------------------------------------------------

def mean(values):
    return sum(values) / len(values) if values else None


def slope_per_hour(points):
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 3:
        return None
    mx = mean([t for t, _ in points])
    my = mean([v for _, v in points])
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    return sum((t - mx) * (v - my) for t, v in points) / sxx * 3600


def nice_step(span, ticks=5):
    raw = span / ticks if span > 0 else 1
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def svg_frame(width, height, left, right, top, bottom, title, t_end, v_max, y_label, y_format="{:g}", v_min=0.0):
    x = lambda t: left + t / t_end * (width - left - right)
    y = lambda v: top + (1 - (v - v_min) / (v_max - v_min)) * (height - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    step = nice_step(v_max - v_min)
    v = v_min
    while v <= v_max + 1e-9:
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{y_format.format(v)}</text>')
        v += step
    minutes = t_end / 60
    step = nice_step(minutes, 8)
    m = 0.0
    while m <= minutes + 1e-9:
        out.append(f'<line x1="{x(m * 60):.1f}" y1="{height - bottom}" x2="{x(m * 60):.1f}" y2="{height - bottom + 4}" stroke="#333"/>')
        out.append(f'<text x="{x(m * 60):.1f}" y="{height - bottom + 16}" text-anchor="middle">{m:g}</text>')
        m += step
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">minutes since the first node started</text>')
    out.append(f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 '
               f'{(top + height - bottom) / 2})">{y_label}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#333"/>')
    return out, x, y


def svg_marks(out, x, top, bottom_y, churns, settle, windows):
    for w0, w1 in windows:
        out.append(f'<rect x="{x(w0):.1f}" y="{top}" width="{max(1, x(w1) - x(w0)):.1f}" height="{bottom_y - top}" '
                   'fill="#2ca02c" fill-opacity="0.08"/>')
    if settle is not None:
        out.append(f'<line x1="{x(settle):.1f}" y1="{top}" x2="{x(settle):.1f}" y2="{bottom_y}" stroke="#2ca02c" '
                   'stroke-dasharray="2,3"/>')
    for t in churns:
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{bottom_y}" stroke="#999" stroke-dasharray="4,3"/>')


def svg_metric(path, title, y_label, band, restarted, churns, settle, windows, t_end, integer=False):
    """BAND: (t, min, median, max) of the nodes never restarted; RESTARTED: ([(t, v)], incarnation) per
    incarnation of a node that was restarted. INTEGER: a count (whole-number ticks)."""
    width, height, left, right, top, bottom = 800, 400, 64, 20, 70, 44
    highs = [b[3] for b in band] + [v for points, _ in restarted for _, v in points]
    lows = [b[1] for b in band] + [v for points, _ in restarted for _, v in points]
    lo, hi = (min(lows), max(highs)) if highs else (0, 1)
    # The axis starts at 0 unless the values sit high above it: then it spans them with a margin, so that a
    # change shows.
    pad = 0.15 * max(hi - lo, 0.02 * abs(hi), 1e-6)
    v_min, v_max = lo - pad, hi + pad
    if v_min < 0.5 * v_max:
        v_min = 0.0
    step = nice_step(v_max - v_min)
    if integer:
        step = max(1.0, round(step))
    v_min = math.floor(v_min / step) * step
    v_max = math.ceil(v_max / step) * step
    out, x, y = svg_frame(width, height, left, right, top, bottom, title, t_end, v_max, y_label, v_min=v_min)
    svg_marks(out, x, top, height - bottom, churns, settle, windows)
    if band:
        upper = " ".join(f"{x(t):.1f},{y(hi):.1f}" for t, _, _, hi in band)
        lower = " ".join(f"{x(t):.1f},{y(lo):.1f}" for t, lo, _, _ in reversed(band))
        out.append(f'<polygon points="{upper} {lower}" fill="#1f77b4" fill-opacity="0.18" stroke="none"/>')
    for points, incarnation in restarted:
        if len(points) > 1:
            out.append('<polyline fill="none" stroke="#ff7f0e" stroke-opacity="0.7" points="'
                       + " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points) + '"/>')
        if incarnation > 0 and points:
            out.append(f'<circle cx="{x(points[0][0]):.1f}" cy="{y(points[0][1]):.1f}" r="2.5" fill="#ff7f0e"/>')
    if band:  # the median on top of everything
        out.append('<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="'
                   + " ".join(f"{x(t):.1f},{y(med):.1f}" for t, _, med, _ in band) + '"/>')
    legend = [("#1f77b4", "never restarted: median (line), min-max (band)"),
              ("#ff7f0e", "restarted nodes, each incarnation (dot: restart)"),
              ("#999", "churn (SIGKILL + restart)"), ("#2ca02c", "settled; the compared windows (shaded)")]
    for i, (colour, label) in enumerate(legend):
        lx, ly = left + (i % 2) * 360, 40 + (i // 2) * 15
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 18}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 24}" y="{ly}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def svg_delivery(path, intervals, churns, settle, t_end):
    """INTERVALS: (t0, t1, answered, sent, affected_answered, affected_sent) per sample interval."""
    width, height, left, right, top, bottom = 800, 300, 64, 20, 36, 44
    out, x, y = svg_frame(width, height, left, right, top, bottom, "Pings answered per sample interval",
                          t_end, 1.0, "share answered", "{:.1f}")
    svg_marks(out, x, top, height - bottom, churns, settle, [])
    for colour, index, label in (("#1f77b4", 2, "pings between routable nodes"), ("#ff7f0e", 4, "churn-affected pings")):
        points = [((t0 + t1) / 2, r[index] / r[index + 1]) for r in intervals for t0, t1 in [r[:2]] if r[index + 1]]
        if len(points) > 1:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{2 if index == 2 else 1}" points="'
                       + " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points) + '"/>')
        for t, v in points:
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}"/>')
        ly = height - bottom - (30 if index == 2 else 15)
        out.append(f'<line x1="{left + 10}" y1="{ly - 4}" x2="{left + 28}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + 34}" y="{ly}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def fmt(value, digits=2, unit=""):
    if value is None:
        return "—"
    return f"{value:.{digits}f}{unit}"


def log_levels(directory):
    """Lines per log level over every node's log, and the most frequent warning/error messages."""
    levels, messages = {}, {}
    pattern = re.compile(r"^\S+ (trace|debug|info|notice|warning|error|critical) ")
    logs = os.path.join(directory, "logs")
    if not os.path.isdir(logs):
        return levels, []
    for name in sorted(os.listdir(logs)):
        with open(os.path.join(logs, name), errors="replace") as f:
            for line in f:
                m = pattern.match(line)
                if not m:
                    continue
                levels[m.group(1)] = levels.get(m.group(1), 0) + 1
                if m.group(1) in ("warning", "error", "critical"):
                    text = line[m.end():].strip()
                    text = re.sub(r"\b[0-9a-f]{8,}\b", "…", text)
                    text = re.sub(r"\d+(\.\d+)?", "N", text)[:160]
                    key = (m.group(1), text)
                    messages[key] = messages.get(key, 0) + 1
    top = sorted(messages.items(), key=lambda kv: -kv[1])[:8]
    return levels, top


def write_report(directory, out_dir):
    directory = os.path.abspath(directory)
    meta_path = os.path.join(directory, "meta.json")
    if not os.path.exists(meta_path):
        raise Failure(f"no long run in {directory} (no meta.json): run `{sys.argv[0]} run --dir {directory}` first")
    with open(meta_path) as f:
        meta = json.load(f)
    samples = load_jsonl(os.path.join(directory, "samples.jsonl"))
    events = load_jsonl(os.path.join(directory, "events.jsonl"))
    pings = load_jsonl(os.path.join(directory, "pings.jsonl"))
    settle = meta.get("settled_t")
    if settle is None or not samples:
        raise Failure(f"the run in {directory} never settled (its ring never became consistent): nothing to report")
    end = meta.get("end_t") or max(s["at"] for s in samples)
    os.makedirs(out_dir, exist_ok=True)
    names = meta["node_names"]
    restarted = {e["node"] for e in events if e["kind"] == "restart"}
    never = [n for n in names if n not in restarted]
    crashes = [e for e in events if e["kind"] == "crash"]
    kills = [e for e in events if e["kind"] == "kill"]
    churn_numbers = sorted({e["churn"] for e in kills})
    churn_times = [min(e["t"] for e in kills if e["churn"] == c) for c in churn_numbers]
    span = end - settle
    window = min(600.0, span / 3)
    windows = [(settle, settle + window), (end - window, end)]
    timers_present = any(s.get("timers") is not None for s in samples)

    by_k = {}
    for s in samples:
        by_k.setdefault(s["k"], []).append(s)

    def band(metric):
        rows = []
        for k in sorted(by_k):
            values = [s[metric] for s in by_k[k] if s["node"] in never and s.get(metric) is not None]
            if values:
                rows.append((by_k[k][0]["t"], min(values), statistics.median(values), max(values)))
        return rows

    def restarted_series(metric):
        series = {}
        for s in samples:
            if s["node"] in restarted and s.get(metric) is not None:
                series.setdefault((s["node"], s["inc"]), []).append((s["t"], s[metric]))
        return [(points, inc) for (_, inc), points in sorted(series.items())]

    def growth(metric):
        first = [s[metric] for s in samples if s["node"] in never and s.get(metric) is not None
                 and windows[0][0] <= s["t"] <= windows[0][1]]
        last = [s[metric] for s in samples if s["node"] in never and s.get(metric) is not None
                and windows[1][0] <= s["t"] <= windows[1][1]]
        means = []
        for k in sorted(by_k):
            t = by_k[k][0]["t"]
            m = mean([s[metric] for s in by_k[k] if s["node"] in never and s.get(metric) is not None])
            if m is not None and t >= settle:
                means.append((t, m))
        per_node = {}
        for n in never:
            f = [s[metric] for s in samples if s["node"] == n and s.get(metric) is not None and windows[0][0] <= s["t"] <= windows[0][1]]
            l = [s[metric] for s in samples if s["node"] == n and s.get(metric) is not None and windows[1][0] <= s["t"] <= windows[1][1]]
            if f and l:
                per_node[n] = mean(l) - mean(f)
        share, absolute, unit = THRESHOLDS[metric]
        a, b = mean(first), mean(last)
        if a is None or b is None:
            verdict = "no data"
        else:
            delta = b - a
            verdict = "**grows**" if delta > absolute and delta > share * abs(a) else "steady"
        worst = max(per_node.items(), key=lambda kv: kv[1]) if per_node else None
        return a, b, slope_per_hour(means), verdict, worst

    # Plots.
    churns_for_plot = churn_times
    plots = []
    for metric, file_name in (("rss_mb", "long-run-rss.svg"), ("fds", "long-run-fds.svg"), ("timers", "long-run-timers.svg")):
        if metric == "timers" and not timers_present:
            continue
        svg_metric(os.path.join(out_dir, file_name), f"{METRIC_LABELS[metric]} per node, {meta['nodes']} nodes",
                   METRIC_LABELS[metric], band(metric), restarted_series(metric), churns_for_plot, settle, windows, end,
                   integer=metric != "rss_mb")
        plots.append((metric, file_name))

    # Pings.
    S = meta["sample_every_s"]
    intervals = []
    k_max = int(end // S) + 1
    for k in range(k_max):
        t0, t1 = k * S, min((k + 1) * S, end)
        rows = [p for p in pings if t0 <= p["t"] < t1]
        if not rows:
            continue
        stable = [p for p in rows if not p["affected"]]
        affected = [p for p in rows if p["affected"]]
        intervals.append((t0, t1, sum(p["ok"] for p in stable), len(stable), sum(p["ok"] for p in affected), len(affected)))
    svg_delivery(os.path.join(out_dir, "long-run-delivery.svg"), intervals, churns_for_plot, settle, end)
    stable = [p for p in pings if not p["affected"]]
    affected = [p for p in pings if p["affected"]]
    answered = sum(p["ok"] for p in stable)
    rtts = [p["rtt_ms"] for p in stable if p["ok"]]
    hops = [p["hops"][0] for p in stable if p["ok"] and p.get("hops") and p["hops"][0] is not None]
    failures = {}
    for p in stable:
        if not p["ok"]:
            reason = re.sub(r"\(reported by [0-9a-f]+\)", "(reported by …)", p.get("failure", "?"))
            reason = re.sub(r"\d+\.\d+ s", "N s", reason)
            failures[reason] = failures.get(reason, 0) + 1

    head = meta.get("commit", "unknown") + (" with uncommitted changes" if meta.get("dirty") else "")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(meta.get("t0_wall", meta["started_wall"])))
    churn_count = max(1, round((meta["nodes"] - BOOTSTRAPS) * meta["churn_fraction"])) if meta["churn_fraction"] else 0
    lines = [
        "# Long run", "",
        f"Generated by `Scripts/long-run.py` from `{directory}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
        f"- build: `{head}`, binary `{meta['wow']}` (built {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(meta['wow_mtime']))})",
        f"- run: started {started}; {meta['nodes']} secured `wow run` processes on 127.0.0.1 (udp, tcp, tls, relay; "
        f"no virtual network device), bootstraps {', '.join(meta['bootstraps'])}; ring consistent {settle:.1f} s after the "
        f"first start; then {(end - settle) / 60:.1f} min of the planned {meta['minutes']:g} "
        f"({meta.get('outcome', '?')})",
        f"- churn: every {meta['churn_every_s']:g} s, {churn_count} of the {meta['nodes'] - BOOTSTRAPS} non-bootstrap "
        f"nodes (--churn-fraction {meta['churn_fraction']:g}) killed with SIGKILL and restarted at once: "
        f"{len(churn_numbers)} events, {len(kills)} kills; nodes never restarted: {len(never)}",
        f"- traffic: {meta['pings_per_second']:g} overlay pings/s in all (random routable source, random destination "
        f"by ring address, {meta['ping_timeout_s']:g} s to answer); sampling every {S:g} s",
    ]
    if crashes:
        lines.append(f"- **{len(crashes)} node processes exited by themselves** (restarted by the script): "
                     + "; ".join(f"{c['node']} at {c['t'] / 60:.1f} min ({c['returncode']})" for c in crashes[:6]))
    if not timers_present:
        lines.append("- `timers`: **missing**: this binary's `status` has no `timers` field (built before it); no timer plot")
    lines += ["", "## Growth", "",
              f"For the {len(never)} nodes never restarted: the mean over the first {window / 60:.1f} min after the ring "
              f"settled ({windows[0][0] / 60:.1f}–{windows[0][1] / 60:.1f} min) against the mean over the last "
              f"{window / 60:.1f} min ({windows[1][0] / 60:.1f}–{windows[1][1] / 60:.1f} min); the slope is a "
              "least-squares fit of the mean across these nodes at each sample after settling. *Grows* when the last "
              "window's mean exceeds the first's by more than both thresholds.", ""]
    if span < 1800:
        lines += [f"This run lasted {span / 60:.1f} min after settling: too short for a verdict on growth without "
                  "bound; the numbers are indicative only.", ""]
    lines += ["| metric | first window | last window | change | slope per hour | threshold | worst node's change | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for metric in ("rss_mb", "fds", "timers", "threads", "connections", "e2e_sessions"):
        if metric == "timers" and not timers_present:
            lines.append("| pending protocol timers | — | — | — | — | 10% and 5 | — | missing in this binary |")
            continue
        a, b, slope, verdict, worst = growth(metric)
        share, absolute, unit = THRESHOLDS[metric]
        change = f"{b - a:+.2f} ({(b - a) / a * 100:+.1f}%)" if a and b is not None else "—"
        lines.append(f"| {METRIC_LABELS[metric]} | {fmt(a)} | {fmt(b)} | {change} | {fmt(slope, 2)} | "
                     f"{share * 100:.0f}% and {absolute:g} {unit} | "
                     f"{(worst[0] + ' ' + format(worst[1], '+.2f')) if worst else '—'} | {verdict} |")
    lines.append("")
    for metric, file_name in plots:
        lines += [f"![{METRIC_LABELS[metric]}]({file_name})", ""]

    lines += ["## Churn", "",
              "Seconds from each restart until the node's control socket answered and until it was routable again "
              "(a ring member whose left and right neighbours are its true ones), and from the kills until the ring "
              "was whole again: every running node routable, and the neighbours of each restarted node had heard "
              "from its new incarnation (not only held their connection to the killed one, which has the same "
              "address).", "",
              "| event | at (min) | restarted | control socket (s) | routable (s) | ring whole (s) |", "|---|---|---|---|---|---|"]
    all_routable = []
    for c, t in zip(churn_numbers, churn_times):
        victims = [e["node"] for e in kills if e["churn"] == c]
        control_s = {e["node"]: e["after_s"] for e in events if e["kind"] == "control" and e.get("churn") == c}
        routable_s = {e["node"]: e["after_s"] for e in events if e["kind"] == "routable" and e.get("churn") == c}
        all_routable += list(routable_s.values())
        whole = next((e["after_s"] for e in events if e["kind"] == "ring_whole" and e.get("churn") == c), None)
        not_whole = next((e for e in events if e["kind"] == "ring_not_whole" and e.get("churn") == c), None)
        lines.append(f"| {c} | {t / 60:.1f} | {', '.join(victims)} | "
                     + ", ".join(fmt(control_s.get(v)) for v in victims) + " | "
                     + ", ".join(fmt(routable_s.get(v)) if v in routable_s else "never" for v in victims) + " | "
                     + (fmt(whole) if whole is not None else (f"not within {not_whole['within_s']:g}" if not_whole else "—")) + " |")
    if all_routable:
        lines += ["", f"Routable again after a restart: p50 {fmt(percentile(all_routable, 50))} s, p90 "
                  f"{fmt(percentile(all_routable, 90))} s, max {fmt(max(all_routable))} s ({len(all_routable)} restarts)."]
    lines.append("")

    lines += ["## Pings", "",
              f"Between nodes that were up and routable when the ping left and when it ended: **{answered}/{len(stable)} "
              f"answered ({answered / len(stable) * 100 if stable else 0:.2f}%)**; round trip p50 {fmt(percentile(rtts, 50))} ms, "
              f"p99 {fmt(percentile(rtts, 99))} ms; hops there mean {fmt(mean(hops))}. Churn-affected (source or "
              f"destination killed, restarting or not yet routable again; not in the ratio): "
              f"{sum(p['ok'] for p in affected)}/{len(affected)} answered.", ""]
    if failures:
        lines += ["Why the others got no answer: " + "; ".join(f"{v}× {k}" for k, v in sorted(failures.items(), key=lambda kv: -kv[1])[:6]) + ".", ""]
        # When they were lost: how long after the last churn event, and whether a node restarted in it (after it
        # was routable again) was one end.
        victims = {c: {e["node"] for e in kills if e["churn"] == c} for c in churn_numbers}
        after_churn, with_victim, delays = 0, 0, []
        for p in stable:
            if p["ok"]:
                continue
            last = [(t, c) for t, c in zip(churn_times, churn_numbers) if t <= p["t"]]
            if last and p["t"] - last[-1][0] <= 60:
                after_churn += 1
                delays.append(p["t"] - last[-1][0])
                with_victim += p["src"] in victims[last[-1][1]] or p["dst"] in victims[last[-1][1]]
        lost = len(stable) - answered
        when = (", ".join(f"{d:.1f}" for d in sorted(delays)) if len(delays) <= 30 else
                f"p50 {percentile(delays, 50):.1f}, p90 {percentile(delays, 90):.1f}, max {max(delays):.1f}")
        lines += [f"Of the {lost} lost, {after_churn} were sent within 60 s after a churn event (at {when} s), "
                  f"{with_victim} of them to or from a node restarted in that event (after it was routable again); "
                  f"{lost - after_churn} at other times.", ""]
    lines += ["| period (min) | answered / sent | ratio | churn-affected answered / sent |", "|---|---|---|---|"]
    bounds = [settle] + churn_times + [end]
    for p0, p1 in zip(bounds, bounds[1:]):
        rows = [p for p in pings if p0 <= p["t"] < p1]
        s_rows = [p for p in rows if not p["affected"]]
        a_rows = [p for p in rows if p["affected"]]
        ok = sum(p["ok"] for p in s_rows)
        lines.append(f"| {p0 / 60:.1f}–{p1 / 60:.1f} | {ok}/{len(s_rows)} | "
                     f"{(ok / len(s_rows) * 100) if s_rows else 0:.2f}% | {sum(p['ok'] for p in a_rows)}/{len(a_rows)} |")
    lossy = [r for r in intervals if r[3] and r[2] < r[3]]
    lines += ["", f"Per sample interval ({S:g} s): {len(intervals)} intervals, {len(lossy)} with a loss"
              + (": " + ", ".join(f"{r[0] / 60:.1f} min {r[2]}/{r[3]}" for r in lossy[:20]) if lossy else "") + ".", "",
              "![Pings answered per interval](long-run-delivery.svg)", ""]

    # Ring consistency over the samples, and the logs.
    after = [by_k[k] for k in sorted(by_k) if by_k[k][0]["t"] >= settle]
    whole = sum(1 for rows in after if rows and all(r.get("routable") for r in rows))
    levels, top = log_levels(directory)
    lines += ["## Other observations", "",
              f"- ring consistent (every running node routable) in {whole} of {len(after)} samples after settling",
              "- node log lines by level (all incarnations, `--log-level " + meta.get("log_level", "notice") + "`): "
              + (", ".join(f"{k} {v}" for k, v in sorted(levels.items())) or "none")]
    for (level, text), count in top:
        lines.append(f"  - {count}× {level}: `{text}`")
    lines.append("")
    name = "report.md" if os.path.abspath(out_dir) == directory else "long-run-report.md"
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def command_report(args):
    out = os.path.abspath(args.out) if args.out else os.path.abspath(args.dir)
    print(f"wrote {write_report(args.dir, out)}")
    return 0


# --- main ----------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run", help="start the nodes and run churn, traffic and sampling; write the report")
    p.add_argument("--nodes", type=int, default=50, help="nodes (default 50; at least 3)")
    p.add_argument("--minutes", type=float, default=60, help="minutes the run lasts once the ring is consistent (default 60)")
    p.add_argument("--churn-every", type=float, default=300, help="seconds between churn events (default 300)")
    p.add_argument("--churn-fraction", type=float, default=0.1,
                   help="share of the non-bootstrap nodes killed and restarted per event, at least one (default 0.1)")
    p.add_argument("--sample-every", type=float, default=30, help="seconds between samples (default 30)")
    p.add_argument("--pings-per-second", type=float, default=3, help="overlay pings per second in all (default 3)")
    p.add_argument("--ping-timeout", type=float, default=2, help="seconds a ping may take to be answered (default 2)")
    p.add_argument("--base-port", type=int, default=27000,
                   help="node i listens on udp BASE+3i, tcp +1, tls +2 on 127.0.0.1 (default 27000, below the "
                        "ephemeral port range)")
    p.add_argument("--settle-timeout", type=float, default=180,
                   help="seconds the ring may take to become consistent after the last start (default 180)")
    p.add_argument("--seed", type=int, default=1, help="seed of the churn victims and ping pairs (default 1)")
    p.add_argument("--log-level", default="notice", help="the nodes' log level (default notice)")
    p.add_argument("--dir", default="/tmp/wow-long-run", help="where everything lives (default /tmp/wow-long-run)")
    p.add_argument("--wow", default=os.path.join(REPO, ".build", "release", "wow"),
                   help="the wow executable (default .build/release/wow of this repository)")
    p.set_defaults(func=command_run)
    p = commands.add_parser("report", help="write the report and plots again from a run's data")
    p.add_argument("--dir", default="/tmp/wow-long-run", help="the run's directory (default /tmp/wow-long-run)")
    p.add_argument("--out", help="where to write them (default: the run's directory, as report.md; elsewhere as "
                                 "long-run-report.md beside the SVGs)")
    p.set_defaults(func=command_report)
    p = commands.add_parser("down", help="stop the processes a run in --dir left running")
    p.add_argument("--dir", default="/tmp/wow-long-run", help="the run's directory (default /tmp/wow-long-run)")
    p.set_defaults(func=command_down)
    args = parser.parse_args()
    try:
        return args.func(args)
    except Failure as failure:
        print(f"long-run.py: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
