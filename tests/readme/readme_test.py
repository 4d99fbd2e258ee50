#!/usr/bin/env python3
"""readme_test.py SOURCE_DIR BUILD_DIR [examples|demo]: runs what README.md shows, so that the
README cannot drift from what gw does.

Every fenced block of README.md is checked by its kind:

- ```sh with lines `$ COMMAND`: a transcript. Each command runs in a fresh sandbox (below) and
  what it prints (stdout and stderr, as a terminal shows them) must equal the lines under it.
  A line `...` stands for any number of lines; hexadecimal runs of 12 or more digits (digests,
  request ids) and the figures of a `took` time are masked on both sides. `\\` continues a
  command on the next line.
- other ```sh blocks: a list of commands. Each (a line, or lines joined by `\\`) must exit 0 in
  the sandbox. `make run` is run for real by the `demo` part; `make test` is what CI runs
  (`.ci/run`), which is checked.
- ```toml: a spec (or a part of one: `version = 1` is added when missing) that `gwctl validate`
  must accept, or a `[[case]]` file that `gwctl test specs/demo.toml` must pass.
- ```json blocks under the gwd section: the shape of a local reply and of an access log line;
  the `demo` part checks that gwd's real ones carry exactly those fields.
- ```lua: a plugin script the examples name. Its first line, `-- PATH`, names the file under
  tests/readme/ that the block must equal, so the toml blocks validate the script shown.
- ```text blocks are not run (diagrams, protocol sketches, synopses).

The sandbox is a new directory holding a copy of specs/ and completions/, the files in
tests/readme/ (specs the examples name, such as shop.toml), the OpenAPI documents the examples
name (petstore.yaml, train.yaml from tests/data/openapi/corpus), an EC key (private.pem), a
deployed table (deployed.gwrt), HOME, and gwctl and gwd first on PATH.
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC, BUILD = (os.path.abspath(p) for p in sys.argv[1:3])
PART = sys.argv[3] if len(sys.argv) > 3 else "examples"
GWCTL = os.path.join(BUILD, "apps", "gwctl", "gwctl")
GWD = os.path.join(BUILD, "apps", "gwd", "gwd")
HEX = re.compile(r"\b[0-9a-f]{12,}\b")
TOOK = re.compile(r"(took|in) [0-9.]+ ?(ms|s)\b")


class Block:
    def __init__(self, lang, line, lines, section):
        self.lang, self.line, self.lines, self.section = lang, line, lines, section

    def where(self):
        return f"README.md:{self.line} ({self.section})"


def blocks(path):
    out, section, lines = [], "", open(path).read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("#"):
            section = lines[i].lstrip("#").strip()
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(Block(m.group(1), i + 1, lines[i + 1:j], section))
            i = j
        i += 1
    return out


def mask(text):
    text = HEX.sub("<hex>", text)
    return TOOK.sub(r"\1 <time>", text)


def matches(expected, actual):
    """Line lists equal, where a `...` line in `expected` stands for any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def logical_lines(lines):
    """Joins `\\` continuations; keeps the first line number of each."""
    out, cur = [], ""
    for ln in lines:
        if ln.endswith("\\"):
            cur += ln[:-1] + " "
            continue
        out.append(cur + ln)
        cur = ""
    return [l for l in out if l.strip()]


def sandbox():
    d = tempfile.mkdtemp(prefix="gw-readme-")
    for sub in ("specs", "completions"):
        shutil.copytree(os.path.join(SRC, sub), os.path.join(d, sub))
    fixtures = os.path.join(SRC, "tests", "readme")
    for name in os.listdir(fixtures):
        if os.path.isdir(os.path.join(fixtures, name)):
            if name != "__pycache__":
                shutil.copytree(os.path.join(fixtures, name), os.path.join(d, name))
        elif not name.endswith(".py") and name != "CMakeLists.txt":
            shutil.copy(os.path.join(fixtures, name), d)
    corpus = os.path.join(SRC, "tests", "data", "openapi", "corpus")
    shutil.copy(os.path.join(corpus, "petstore.yaml"), os.path.join(d, "petstore.yaml"))
    shutil.copy(os.path.join(corpus, "train-travel-api.openapi.yaml"), os.path.join(d, "train.yaml"))
    shutil.copy(os.path.join(SRC, "specs", "partner-keys.txt"), d)
    os.makedirs(os.path.join(d, "home"))
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", os.path.join(d, "private.pem")], check=True, capture_output=True)
    subprocess.run([GWCTL, "compile", "specs/demo.toml", "-o", "deployed.gwrt"], cwd=d, check=True,
                   capture_output=True)
    return d


def env_for(d):
    env = dict(os.environ)
    env.update({"PATH": f"{os.path.dirname(GWCTL)}:{os.path.dirname(GWD)}:{env.get('PATH', '')}",
                "HOME": os.path.join(d, "home"), "NO_COLOR": "1", "LC_ALL": "C.UTF-8",
                "OLD_KEY": "an-existing-key-of-32-characters!"})
    env.pop("GW_SOCKET", None)
    return env


def in_terminal(cmd, d, timeout=60):
    """What `cmd` shows in a terminal: its stdout and stderr on a pseudo-terminal, in the order
    they were written (NO_COLOR keeps colour out)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(["bash", "-c", cmd], cwd=d, env=env_for(d), stdin=subprocess.DEVNULL,
                         stdout=slave, stderr=slave)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer has closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
        p.wait(10)
    return out.decode(errors="replace").replace("\r\n", "\n")


def run(cmd, d, shell="bash", timeout=60):
    return subprocess.run([shell, "-c", cmd], cwd=d, env=env_for(d), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def check_transcript(b):
    problems, d = [], sandbox()
    try:
        steps, cur = [], None
        for ln in b.lines:
            if ln.startswith("$ "):
                cur = [ln[2:], []]
                steps.append(cur)
            elif cur is not None and cur[0].endswith("\\"):
                cur[0] = cur[0][:-1] + " " + ln.strip()
            elif cur is not None:
                cur[1].append(ln)
        for cmd, expected in steps:
            out = in_terminal(cmd, d)
            want = [l.rstrip() for l in mask("\n".join(expected)).split("\n")]
            got = [l.rstrip() for l in mask(out).split("\n")]
            while want and not want[-1]:
                want.pop()
            while got and not got[-1]:
                got.pop()
            if not matches(want, got):
                problems.append(f"{b.where()}: `{cmd}` printed:\n" + out.rstrip() +
                                "\n--- the README shows:\n" + "\n".join(expected).rstrip())
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return problems


def shell_of(cmd):
    """The shell a command is meant for, from its comment (`# zsh ...`, `# fish`)."""
    m = re.search(r"#\s*(bash|zsh|fish)\b", cmd)
    return m.group(1) if m else "bash"


def check_commands(b):
    problems, d = [], sandbox()
    try:
        for cmd in logical_lines(b.lines):
            bare = cmd.split("#")[0].strip()
            if bare == "make test":
                with open(os.path.join(SRC, ".ci", "run")) as f:
                    if "make test" not in f.read():
                        problems.append(f"{b.where()}: .ci/run does not run `make test`")
                continue
            if bare == "make run":
                continue  # the demo part runs it
            r = run(cmd, d, shell_of(cmd))
            if r.returncode != 0:
                problems.append(f"{b.where()}: `{cmd}` exited {r.returncode}:\n{r.stdout.rstrip()}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return problems


def check_toml(b):
    problems, d = [], sandbox()
    try:
        text = "\n".join(b.lines) + "\n"
        if re.search(r"^\[\[case\]\]", text, re.M):
            path, cmd = os.path.join(d, "cases.toml"), [GWCTL, "test", "specs/demo.toml", "cases.toml"]
        else:
            if not re.search(r"^version\s*=", text, re.M):
                text = "version = 1\n" + text
            path, cmd = os.path.join(d, "example.toml"), [GWCTL, "validate", "example.toml"]
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(cmd, cwd=d, env=env_for(d), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            problems.append(f"{b.where()}: `{' '.join(cmd[1:])}` on this block exited "
                            f"{r.returncode}:\n{(r.stdout + r.stderr).rstrip()}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return problems


def check_lua(b):
    """A ```lua block is the text of the file its first line names (`-- plugins/x.lua`)."""
    m = re.match(r"^-- (\S+\.lua)$", b.lines[0] if b.lines else "")
    if not m:
        return [f"{b.where()}: a ```lua block must start with `-- PATH` naming its file in tests/readme/"]
    path = os.path.join(SRC, "tests", "readme", m.group(1))
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        return [f"{b.where()}: {m.group(1)}: {e.strerror}"]
    if text != "\n".join(b.lines) + "\n":
        return [f"{b.where()}: the block differs from tests/readme/{m.group(1)}"]
    return []


def examples():
    problems, counts = [], {"transcripts": 0, "command blocks": 0, "toml blocks": 0, "lua blocks": 0}
    for b in blocks(os.path.join(SRC, "README.md")):
        if b.lang == "sh" and any(l.startswith("$ ") for l in b.lines):
            counts["transcripts"] += 1
            problems += check_transcript(b)
        elif b.lang == "sh":
            counts["command blocks"] += 1
            problems += check_commands(b)
        elif b.lang == "toml":
            counts["toml blocks"] += 1
            problems += check_toml(b)
        elif b.lang == "lua":
            counts["lua blocks"] += 1
            problems += check_lua(b)
        elif b.lang not in ("text", "json", ""):
            problems.append(f"{b.where()}: a ```{b.lang} block: this test does not know how to check it")
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + " checked")
    return problems


# ----------------------------------------------------------------------------- the demo

def get(url, headers=None, method="GET", data=None):
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def readme_json(section_word):
    """The JSON example of the gwd section whose preceding text mentions `section_word`."""
    text = open(os.path.join(SRC, "README.md")).read()
    i = text.index(section_word)
    start = text.index("```json\n", i) + len("```json\n")
    return json.loads(text[start:text.index("```", start)])


def demo():
    problems = []
    d = tempfile.mkdtemp(prefix="gw-readme-demo-")
    # gwd on a port of its own choosing, announced on its "listening" line.
    env = dict(os.environ, GW_DEMO_LISTEN="127.0.0.1:0", TMPDIR=d)
    log_path = os.path.join(d, "make-run.log")
    # The build's own settings, so that make's configure step changes nothing (and rebuilds nothing).
    cache = open(os.path.join(BUILD, "CMakeCache.txt")).read()
    setting = lambda name: re.search(rf"^{name}:\w+=(.*)$", cache, re.M).group(1)
    make = ["make", "--no-print-directory", "run", f"BUILD_DIR={BUILD}",
            f"BUILD_TYPE={setting('CMAKE_BUILD_TYPE')}", f"WERROR={setting('GW_WERROR')}"]
    with open(log_path, "wb") as log:
        p = subprocess.Popen(make, cwd=SRC, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    port = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None and port is None:
            m = re.search(r"^listening 127\.0\.0\.1:(\d+)$", open(log_path, errors="replace").read(), re.M)
            port = int(m.group(1)) if m else None
            time.sleep(0.1)
        out = open(log_path, errors="replace").read()
        if port is None:
            return [f"make run: gwd never said where it listens (exit {p.poll()}):\n{out}"]
        base = f"http://127.0.0.1:{port}"
        status, _, body = get(base + "/pets/7")
        if status != 200 or json.loads(body)["pet"]["name"] != "Nemo":
            problems.append(f"make run: GET /pets/7 gave {status} {body!r}")
        status, headers, body = get(base + "/nowhere")
        reply, shown = json.loads(body), readme_json("**Local replies.**")
        if status != 404 or set(reply) != set(shown) or reply["error"] != shown["error"]:
            problems.append(f"README.md local reply example {shown} vs gwd's 404 {status} {reply}")
        status, _, _ = get(base + "/pets", method="POST", data=b"{}",
                           headers={"X-Api-Key": "demo-partner-key"})
        if status != 201:
            problems.append(f"make run: the README's demo API key got {status}, not 201")
        # The access log goes to make run's output (--access-log -): the last request's line.
        deadline = time.monotonic() + 10
        record = None
        while record is None and time.monotonic() < deadline:
            for line in open(log_path, errors="replace"):
                if line.startswith("{") and '"method":"POST"' in line:
                    record = json.loads(line)
            time.sleep(0.1)
        shown = readme_json("**Access log**")
        if record is None:
            problems.append("make run: no access log line for the POST")
        elif set(shown) - set(record):
            problems.append(f"README.md access log example has fields gwd does not write: "
                            f"{sorted(set(shown) - set(record))}")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C sends to the whole foreground job
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
                problems.append("make run did not stop on Ctrl-C (SIGINT) within 30 s")
        shutil.rmtree(d, ignore_errors=True)
    for b in (9101, 9102, 9103) + ((port,) if port else ()):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", b)) == 0:
                problems.append(f"make run left something listening on port {b} after Ctrl-C")
    return problems


def main():
    problems = examples() if PART == "examples" else demo()
    for p in problems:
        print(p, end="\n\n", file=sys.stderr)
    if problems:
        print(f"{len(problems)} README example(s) do not do what README.md says", file=sys.stderr)
        return 1
    print("README examples: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
