#!/usr/bin/env python3
"""Opens WOW's web view in headless Chromium and checks what a person would see.

    web-view-check.py --wow .build/debug/wow --chromium /usr/bin/chromium demo --nodes 16 [--screenshot out.png]
    web-view-check.py --wow .build/debug/wow --chromium /usr/bin/chromium sim --nodes 1000 [--screenshot out.png]

`demo` starts `wow demo --web 127.0.0.1:0`, opens the page and waits until every node is drawn, links of each
structured type are drawn, and the demo's shortcut has appeared after its traffic started; `sim` starts
`wow sim --web 127.0.0.1:0`, waits for the recorded run and measures the frame time with every node drawn.
Either way no console errors may appear. Prints one JSON object (what the page showed, and any failures) and
exits 0 when every check passed, 1 otherwise. Chromium is driven over its DevTools protocol on a pipe
(--remote-debugging-pipe): Python's standard library only, no WebDriver, nothing downloaded.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


class DevTools:
    """The Chrome DevTools protocol over the pipe Chromium reads on fd 3 and writes on fd 4."""

    def __init__(self, chromium, width=1400, height=900):
        self.profile = tempfile.mkdtemp(prefix="wow-web-chromium-")
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def hand_over_pipes():
            # Move both ends above the standard descriptors first, so fds 3 and 4 can be overwritten safely.
            read_end = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        arguments = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                     "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                     f"--window-size={width},{height}", "about:blank"]
        self.process = subprocess.Popen(arguments, preexec_fn=hand_over_pipes, close_fds=False,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_read)
        os.close(replies_write)
        self.next_id = 0
        self.results = {}
        self.events = []
        self.condition = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        pending = b""
        while True:
            chunk = os.read(self.replies, 1 << 20)
            if not chunk:
                with self.condition:
                    self.condition.notify_all()
                return
            pending += chunk
            while b"\0" in pending:
                message, pending = pending.split(b"\0", 1)
                reply = json.loads(message)
                with self.condition:
                    if "id" in reply:
                        self.results[reply["id"]] = reply
                    else:
                        self.events.append(reply)
                    self.condition.notify_all()

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        ident = self.next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        with self.condition:
            while ident not in self.results:
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"no answer to {method} within {timeout} s")
                self.condition.wait(left)
            reply = self.results.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Wow:
    """`wow demo|sim --web 127.0.0.1:0` as a child process, its output collected as it comes."""

    def __init__(self, wow, arguments):
        self.process = subprocess.Popen([wow] + arguments + ["--web", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def wait_for(self, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.process.poll() is not None:
                time.sleep(0.2)
                return re.search(pattern, self.output())
            time.sleep(0.1)
        return None

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wow", required=True)
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--screenshot")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("what", choices=["demo", "sim"])
    parser.add_argument("--nodes", type=int, default=16)
    options = parser.parse_args()

    failures = []
    result = {"what": options.what, "nodes_expected": options.nodes}
    if options.what == "demo":
        wow = Wow(options.wow, ["demo", "--nodes", str(options.nodes), "--messages", "20"])
    else:
        wow = Wow(options.wow, ["sim", "--nodes", str(options.nodes), "--messages", "100", "--seed", "1"])
    browser = None
    try:
        match = wow.wait_for(r"web view at (http://\S+)", 60)
        if not match:
            raise RuntimeError("wow printed no 'web view at' line:\n" + wow.output())
        url = match.group(1)
        result["url"] = url
        browser = DevTools(options.chromium)
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ["Runtime", "Log", "Page"]:
            browser.call(domain + ".enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.call("Page.navigate", {"url": url}, session=session)

        def evaluate(expression):
            reply = browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                 session=session)
            if "exceptionDetails" in reply:
                raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
            return reply["result"].get("value")

        def figures():
            text = evaluate("window.wowView ? JSON.stringify(wowView.figures()) : null")
            return json.loads(text) if text else None

        deadline = time.time() + options.timeout
        seen = None
        while time.time() < deadline:
            seen = figures()
            if seen and options.what == "demo":
                types = seen["byType"]
                if (seen["nodes"] == options.nodes and types.get("structured.near", 0) > 0
                        and types.get("structured.far", 0) > 0 and types.get("structured.shortcut", 0) > 0
                        and re.search(r"shortcut \S+ <-> \S+ formed", wow.output())):
                    break
            if seen and options.what == "sim" and seen["finished"]:
                break
            time.sleep(0.5)
        if options.what == "sim" and seen:
            # The recorded run at its end: every node and link drawn; frame time over 30 redraws.
            evaluate("wowView.seek(wowView.events()[wowView.events().length - 1].t)")
            evaluate("(() => { for (let i = 0; i < 30; i++) wowView.redraw(); })()")
            time.sleep(0.5)
            seen = figures()
        result["figures"] = seen
        if not seen:
            failures.append("the page never set window.wowView")
        elif options.what == "demo":
            if seen["nodes"] != options.nodes:
                failures.append(f"{seen['nodes']} nodes drawn, expected {options.nodes}")
            for link_type in ["structured.near", "structured.far", "structured.shortcut"]:
                if seen["byType"].get(link_type, 0) == 0:
                    failures.append(f"no {link_type} link drawn")
            if "leaf" not in seen["typesSeen"]:
                failures.append("no leaf connection in the event stream (every join starts with one)")
            timing = evaluate("""(() => {
                const events = wowView.events();
                const traffic = events.find((e) => e.k === 'note' && /exchange 10 packets/.test(e.text));
                const shortcut = events.find((e) => e.k === 'link' && e.ty.includes('structured.shortcut'));
                return JSON.stringify({traffic: traffic ? traffic.t : null, shortcut: shortcut ? shortcut.t : null});
            })()""")
            timing = json.loads(timing)
            result["traffic_started_s"] = timing["traffic"]
            result["first_shortcut_s"] = timing["shortcut"]
            if timing["traffic"] is None or timing["shortcut"] is None or timing["shortcut"] < timing["traffic"]:
                failures.append(f"no shortcut appeared after the traffic started: {timing}")
        else:
            if not seen["finished"]:
                failures.append("the simulation did not finish within the timeout")
            if seen["nodes"] != options.nodes:
                failures.append(f"{seen['nodes']} nodes drawn, expected {options.nodes}")
        if options.screenshot:
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
            import base64
            with open(options.screenshot, "wb") as out:
                out.write(base64.b64decode(shot["data"]))
            result["screenshot"] = options.screenshot
        errors = []
        for event in list(browser.events):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "") + " " +
                              str(params["exceptionDetails"].get("exception", {}).get("description", "")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", "") + " " + params["entry"].get("url", ""))
        result["console_errors"] = errors
        if errors:
            failures.append(f"console errors: {errors}")
    except Exception as error:  # report, do not crash: the caller reads the JSON
        failures.append(f"{type(error).__name__}: {error}")
    finally:
        if browser:
            browser.close()
        wow.stop()
    result["failures"] = failures
    result["wow_output_tail"] = wow.lines[-15:]
    print(json.dumps(result, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
