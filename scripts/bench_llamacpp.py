"""Tally's local evaluation against llama.cpp on the same GGUF (see scripts/bench_llamacpp.sh).

Run through the shell script, which builds llama-cpp-python into a cached virtual environment
and Tally in release mode first. Prints two Markdown tables (end to end, single stream) with
medians and per-round ratios; order alternates between rounds because absolute speeds drift on
shared machines.
"""

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TASK = """task:
  instruction: "Is this movie review positive or negative? Answer with one word: positive or negative."
  input: "Review: {text}"
  target: label
  labels: [positive, negative]
  metric: accuracy
  max_tokens: 4
data:
  train: cache:data/vader-movie-reviews/train.jsonl
  test: cache:data/vader-movie-reviews/test.jsonl
"""

STRATEGIES = {
    "zero-shot": "{name: zero-shot, kind: zero-shot, backend: b}",
    "few-shot-4": "{name: few-shot-4, kind: few-shot, backend: b, shots: 4, selection: first}",
    "chain-of-thought": "{name: chain-of-thought, kind: chain-of-thought, backend: b, max_tokens: 48}",
}

PHASE = re.compile(r"^evaluate (?P<name>.+?): done(?: \(\d+\))? in (?P<s>[0-9.]+) s$")


def recipe(strategy, backend, n):
    return (
        f"name: bench-{strategy}\n{TASK}backends:\n  b: {backend}\n"
        f"strategies:\n  - {STRATEGIES[strategy]}\n"
        "costs: {compute_usd_per_hour: 0.10, requests_per_month: 1000, horizon_months: 1}\n"
        f"run: {{seed: 7, concurrency: 8, max_examples: {n}}}\n"
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model, threads, port, log):
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
        "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--n_ctx", "4096",
    ]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1/models"
    for _ in range(240):  # up to 2 minutes to load
        if server.poll() is not None:
            raise SystemExit(f"llama.cpp server exited with {server.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("llama.cpp server did not answer within 2 minutes")


def tally_run(tally, work, side, strategy, backend, n):
    home = work / side
    home.mkdir(exist_ok=True)
    path = home / f"{strategy}.yaml"
    path.write_text(recipe(strategy, backend, n))
    env = dict(os.environ, TALLY_HOME=str(home / ".tally"), LLAMA_BENCH_KEY="not-a-secret")
    out = subprocess.run(
        [tally, "run", str(path), "--no-cache"],
        capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"tally run failed on {side}/{strategy}:\n{out.stdout}\n{out.stderr}")
    times = [float(m["s"]) for line in (out.stdout + out.stderr).splitlines()
             if (m := PHASE.match(line.strip())) and m["name"] == strategy]
    if not times:
        raise SystemExit(f"no 'evaluate {strategy}: done in' line in the output of {side}/{strategy}")
    examples = home / f"{strategy}.jsonl"
    subprocess.run([tally, "report", "latest", "--examples", str(examples), "--format", "json"],
                   capture_output=True, text=True, env=env, check=True)
    replies = {}
    for line in examples.read_text().splitlines():
        row = json.loads(line)
        replies[row["example_id"]] = row["output"]
    return times[-1], replies


def end_to_end(args, work):
    port = free_port()
    log = open(work / "llama-server.log", "w")
    server = start_server(args.model, 2, port, log)
    local = f"{{plugin: swift-trainer, model: {json.dumps(args.model)}, threads: 2}}"
    hosted = ("{plugin: openai, model: smollm2, api_key_env: LLAMA_BENCH_KEY, "
              f"base_url: \"http://127.0.0.1:{port}/v1\", timeout_s: 600, "
              "price: {input_per_mtok: 0, output_per_mtok: 0}}")
    rows = []
    try:
        for strategy in STRATEGIES:
            tally_t, llama_t, agree = [], [], None
            for r in range(args.rounds):
                order = [("tally", local), ("llama", hosted)]
                if r % 2:
                    order.reverse()
                got = {}
                for side, backend in order:
                    got[side] = tally_run(args.tally, work, side, strategy, backend, args.n)
                tally_t.append(got["tally"][0])
                llama_t.append(got["llama"][0])
                a, b = got["tally"][1], got["llama"][1]
                agree = (sum(1 for k in a if a[k] == b.get(k)), len(a))
                print(f"  {strategy} round {r + 1}: tally {got['tally'][0]:.1f} s, "
                      f"llama.cpp {got['llama'][0]:.1f} s", file=sys.stderr, flush=True)
            rows.append((strategy, tally_t, llama_t, agree))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nEnd to end, per {args.n} reviews (2 threads; ratio = llama.cpp / Tally, >1 = Tally faster)\n")
    print("| strategy | Tally (median) | llama.cpp server (median) | ratio (median, range) | identical replies |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for strategy, t, l, agree in rows:
        ratios = [b / a for a, b in zip(t, l)]
        print(f"| {strategy} | {statistics.median(t):.1f} s | {statistics.median(l):.1f} s | "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | {agree[0]} / {agree[1]} |")
    return rows


def llama_single(model, threads, prefill, decode, steps):
    from llama_cpp import Llama
    llm = Llama(model_path=model, n_threads=threads, n_threads_batch=threads, n_ctx=max(512, prefill + decode + 64),
                n_batch=512, verbose=False, seed=0)
    rng = random.Random(0)
    ids = [rng.randrange(llm.n_vocab()) for _ in range(prefill + decode)]
    pre, dec = [], []
    for i in range(steps + 1):
        llm.reset()
        start = time.perf_counter()
        llm.eval(ids[:prefill])
        elapsed = time.perf_counter() - start
        llm.reset()
        llm.eval(ids[:32])
        start = time.perf_counter()
        for j in range(decode):
            llm.eval([ids[32 + j]])
        d = time.perf_counter() - start
        if i > 0:  # the first is a warm-up
            pre.append(prefill / elapsed)
            dec.append(decode / d)
    return statistics.median(pre), statistics.median(dec)


def tally_single(bench, model, threads, mode, prefill, decode, steps):
    # The GGUF's weights in their block format, as `tally run` keeps them (its default).
    cmd = [bench, "--config", "smollm2", "--model", model, "--weights", "quantised", "--mode", mode,
           "--threads", str(threads), "--batch", "1", "--steps", str(steps), "--warmup", "1"]
    cmd += ["--seq", str(prefill)] if mode == "prefill" else ["--seq", "32", "--new-tokens", str(decode)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    result = json.loads(line)
    return float(result["tokens_per_s"])


def single_stream(args):
    rows = []
    for threads in args.threads:
        t_pre, t_dec, l_pre, l_dec = [], [], [], []
        for r in range(args.rounds):
            sides = ["tally", "llama"] if r % 2 == 0 else ["llama", "tally"]
            for side in sides:
                if side == "tally":
                    t_pre.append(tally_single(args.tally_bench, args.model, threads, "prefill", args.prefill, args.decode, 3))
                    t_dec.append(tally_single(args.tally_bench, args.model, threads, "decode", args.prefill, args.decode, 3))
                else:
                    # A fresh process per round, as on Tally's side.
                    code = ("import json,sys; sys.path.insert(0, sys.argv[1]); import bench_llamacpp as b; "
                            "print(json.dumps(b.llama_single(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), 3)))")
                    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), args.model, str(threads),
                                          str(args.prefill), str(args.decode)], capture_output=True, text=True, check=True)
                    p, d = json.loads(out.stdout.strip().splitlines()[-1])
                    l_pre.append(p)
                    l_dec.append(d)
            print(f"  threads {threads} round {r + 1}: prefill {t_pre[-1]:.0f} / {l_pre[-1]:.0f} tok/s, "
                  f"decode {t_dec[-1]:.1f} / {l_dec[-1]:.1f} tok/s (Tally / llama.cpp)", file=sys.stderr, flush=True)
        rows.append((threads, t_pre, l_pre, t_dec, l_dec))
    print(f"\nSingle stream, tokens/s (prefill {args.prefill} tokens, decode {args.decode} tokens; ratio = Tally / llama.cpp)\n")
    print("| threads | prefill Tally | prefill llama.cpp | ratio (range) | decode Tally | decode llama.cpp | ratio (range) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for threads, tp, lp, td, ld in rows:
        rp = [a / b for a, b in zip(tp, lp)]
        rd = [a / b for a, b in zip(td, ld)]
        print(f"| {threads} | {statistics.median(tp):.0f} | {statistics.median(lp):.0f} | "
              f"{statistics.median(rp):.2f} ({min(rp):.2f}-{max(rp):.2f}) | {statistics.median(td):.1f} | "
              f"{statistics.median(ld):.1f} | {statistics.median(rd):.2f} ({min(rd):.2f}-{max(rd):.2f}) |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tally", required=True)
    parser.add_argument("--tally-bench", required=True)
    parser.add_argument("--model")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--prefill", type=int, default=256)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--parts", nargs="+", default=["e2e", "single"], choices=["e2e", "single"])
    args = parser.parse_args()
    if not args.model:
        listing = json.loads(subprocess.run([args.tally, "models", "list", "--json"], capture_output=True,
                                            text=True, check=True).stdout)
        args.model = next(m["path"] for m in listing["models"] if m["name"] == "smollm2-135m-instruct")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# {time.strftime('%Y-%m-%d')}, commit {commit}, model {Path(args.model).name}, "
          f"{os.cpu_count()} CPUs, {args.rounds} rounds alternating order")
    with tempfile.TemporaryDirectory(prefix="tally-bench-llamacpp-") as tmp:
        work = Path(tmp)
        if "e2e" in args.parts:
            end_to_end(args, work)
        if "single" in args.parts:
            single_stream(args)


if __name__ == "__main__":
    main()
