#!/usr/bin/env python3
"""An exec plugin that breaks the exec protocol on purpose, one way at a time.

    python3 broken_plugin.py --break WHAT [--spawn-child] [--ignore-sigterm]

Without --break (or with `--break nothing`) it is a small, correct plugin: a deterministic
keyword "model" that fine-tunes by storing word counts in work_directory/model.json. Each
WHAT changes one thing, for Tally's tests and for a conformance checker:

Identity and determinism
  describe-version-drift   describe's `version` differs every time the program starts
  artifact-identity-drift  open_artifact gives the same artifact a new identity on every call
  nondeterministic         the same greedy generate request gets a different answer each time
  finetune-identity        the same finetune job writes an artifact with another content (and
                           so another identity) every time it runs
Usage
  negative-usage           generate reports prompt_tokens = -5
  missing-usage            generate leaves `usage` out
Schema
  missing-jsonrpc          replies to generate without "jsonrpc"
  result-and-error         replies to generate with both `result` and `error`
  wrong-type               generate's `text` is a number
  string-id                replies to generate with the id as a string
  unknown-id               replies to generate with an id Tally never sent (and never answers)
  not-json                 writes a line that is not JSON before each reply
  bad-progress             finetune's progress notification has completed = -1
  huge-line                answers generate with a line longer than 8 MiB
Versions
  protocol-2               describe says protocol_version "2.0"
  no-protocol-version      describe leaves protocol_version out
  pre-1.0                  speaks the exec protocol from before 1.0 (no JSON-RPC framing)
Process
  exit-mid-request         exits with status 3 when asked to generate (after a line on stderr)
  exit-after-describe      closes stdin right after answering describe, exits 0.5 s later (status 4)
  hang-mid-request         never answers generate (sleeps)

--spawn-child starts `sleep 600` as a child and writes "child pid N of plugin pid M" to stderr (to check that
stopping the plugin stops its process group). --ignore-sigterm ignores SIGTERM (to check
that SIGKILL follows).
"""

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--break", dest="breaks", default="nothing")
parser.add_argument("--spawn-child", action="store_true")
parser.add_argument("--ignore-sigterm", action="store_true")
args = parser.parse_args()
BREAK = args.breaks
calls = {"generate": 0, "open_artifact": 0}

if args.ignore_sigterm:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if args.spawn_child:
    child = subprocess.Popen(["sleep", "600"])
    sys.stderr.write("child pid %d of plugin pid %d\n" % (child.pid, os.getpid()))
    sys.stderr.flush()


def write(message):
    if BREAK == "not-json":
        sys.stdout.write("loading weights... done\n")
    if BREAK == "pre-1.0":
        message = {key: value for key, value in message.items() if key != "jsonrpc"}
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def reply(request_id, result):
    write({"jsonrpc": "2.0", "id": request_id, "result": result})


def error(request_id, code, message, data=None):
    body = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    write({"jsonrpc": "2.0", "id": request_id, "error": body})


def words(text):
    return [w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split() if w]


def describe(request_id, params):
    result = {
        "protocol_version": "1.0", "name": "broken-plugin", "version": "1",
        "data_leaves_machine": False, "fine_tuning_methods": ["lora"], "max_concurrency": 2,
    }
    if BREAK == "describe-version-drift":
        result["version"] = "1+%d.%d" % (os.getpid(), time.time_ns() % 1000000)
    if BREAK == "protocol-2":
        result["protocol_version"] = "2.0"
    if BREAK in ("no-protocol-version", "pre-1.0"):
        del result["protocol_version"]
    reply(request_id, result)
    if BREAK == "exit-after-describe":
        # Close stdin first and linger a moment, so that Tally's next write meets a pipe
        # without a reader (EPIPE) rather than a process already known to be gone.
        os.close(0)
        sys.stderr.write("broken_plugin.py: leaving after describe\n")
        sys.stderr.flush()
        time.sleep(0.5)
        os._exit(4)


def generate(request_id, params):
    calls["generate"] += 1
    if BREAK == "exit-mid-request":
        sys.stderr.write("broken_plugin.py: simulated crash in generate\n")
        sys.stderr.flush()
        os._exit(3)
    if BREAK == "hang-mid-request":
        while True:
            time.sleep(60)
    messages = params.get("messages", [])
    question = words(messages[-1]["content"]) if messages else []
    text = "positive"
    if params.get("artifact"):
        with open(params["artifact"], encoding="utf-8") as handle:
            counts = json.load(handle)["counts"]
        scores = {}
        for word in question:
            for label, count in counts.get(word, {}).items():
                scores[label] = scores.get(label, 0) + count
        if scores:
            text = max(sorted(scores), key=lambda label: scores[label])
    if BREAK == "nondeterministic":
        text = ["positive", "negative", "unsure"][calls["generate"] % 3]
    usage = {"prompt_tokens": sum(len(words(m["content"])) for m in messages), "completion_tokens": 1}
    result = {"text": text, "usage": usage}
    if BREAK == "negative-usage":
        usage["prompt_tokens"] = -5
    if BREAK == "missing-usage":
        del result["usage"]
    if BREAK == "wrong-type":
        result["text"] = 42
    if BREAK == "missing-jsonrpc":
        sys.stdout.write(json.dumps({"id": request_id, "result": result}) + "\n")
    elif BREAK == "result-and-error":
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result, "error": {"code": -32000, "message": "both"}}) + "\n")
    elif BREAK == "string-id":
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": str(request_id), "result": result}) + "\n")
    elif BREAK == "unknown-id":
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id + 1000, "result": result}) + "\n")
    elif BREAK == "huge-line":
        result["text"] = "x" * (9 * 1024 * 1024)
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n")
    else:
        reply(request_id, result)
        return
    sys.stdout.flush()


def finetune(request_id, params):
    work = params["work_directory"]
    os.makedirs(work, exist_ok=True)
    counts = {}
    for example in params["train"]:
        label = example["completion"].strip()
        for word in words(example["messages"][-1]["content"]):
            counts.setdefault(word, {})
            counts[word][label] = counts[word].get(label, 0) + 1
    model = {"counts": counts}
    if BREAK == "finetune-identity":
        model["nonce"] = os.urandom(8).hex()
    progress = {"id": request_id, "phase": "training", "completed": 1, "total": 1}
    if BREAK == "bad-progress":
        progress["completed"] = -1
    write({"jsonrpc": "2.0", "method": "progress", "params": progress})
    artifact = os.path.join(work, "model.json")
    with open(artifact, "w", encoding="utf-8") as handle:
        json.dump(model, handle, sort_keys=True)
    reply(request_id, {"artifact": artifact, "steps": 1, "trained_tokens": 0, "wall_s": 0.0})


def open_artifact(request_id, params):
    calls["open_artifact"] += 1
    artifact = params["artifact"]
    try:
        with open(artifact, "rb") as handle:
            identity = "sha256:" + hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        error(request_id, -32001, "artifact not found: %s" % artifact, {"artifact": artifact})
        return
    if BREAK == "artifact-identity-drift":
        identity += "-%d" % calls["open_artifact"]
    reply(request_id, {"identity": identity})


def score(request_id, params):
    tokens = len(words(params["text"]))
    reply(request_id, {"nats": 2.0 if tokens else 0.0, "tokens": tokens})


METHODS = {"describe": describe, "generate": generate, "finetune": finetune, "open_artifact": open_artifact, "score": score}

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        request = json.loads(line)
    except ValueError:
        error(None, -32700, "not JSON")
        continue
    handler = METHODS.get(request.get("method"))
    if handler is None:
        error(request.get("id"), -32601, "unknown method %s" % request.get("method"))
        continue
    handler(request.get("id"), request.get("params") or {})
