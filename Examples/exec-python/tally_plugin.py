#!/usr/bin/env python3
"""A complete Tally exec plugin in standard-library Python (exec protocol 1.1).

The "model" is a toy, and says so: a bag-of-words softmax classifier, nothing like a
language model. What it shows is everything a real plugin has to get right:

- JSON-RPC 2.0 framing on stdin/stdout, one message per line, logs on stderr only;
- describe with the protocol version, the methods it can fine-tune with, and a version
  that changes whenever its outputs could;
- deterministic generate, score and embed, with honest token usage;
- finetune that reports progress, checkpoints after every step in the work directory Tally
  gives it, resumes from that checkpoint when the job is run again, and writes nothing
  anywhere else;
- open_artifact that names an artifact by a hash of its content.

Base model (no artifact): it knows nothing. It answers with the answer of the in-context
demonstration that shares the most words with the question, or "unknown" without one.
Fine-tuned model: softmax regression over the words of the last user message, trained by
plain SGD (a fixed step size: `learning_rate`, which is sized for neural networks, is
ignored). Every method is a pure function of the request and the artifact.

Environment:
  TALLY_EXAMPLE_CRASH_AFTER_STEP=N  exit with status 3 right after writing the checkpoint
                                    of step N (to try resuming); ignored when the job
                                    resumes from step N or later.
"""

import hashlib
import json
import math
import os
import re
import sys
import time

PROTOCOL_VERSION = "1.1"
NAME = "python-toy"
# Part of every cache key on Tally's side: bump it whenever answers could change.
VERSION = "1.0.0"
METHODS = ["full-finetune"]
MAX_LINE_BYTES = 8 * 1024 * 1024
EMBEDDING_DIMENSION = 128
EMBED_BATCH = 32
VOCABULARY_SIZE = 50000
STEP_SIZE = 0.5
CHECKPOINT = "checkpoint.json"
MODEL = "model.json"

# JSON-RPC error codes (docs/plugins.md).
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
FAILED, ARTIFACT_NOT_FOUND, UNSUPPORTED_PROTOCOL = -32000, -32001, -32002


class RPCError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def log(text):
    sys.stderr.write("tally_plugin.py: %s\n" % text)
    sys.stderr.flush()


def send(message):
    message = dict(message, jsonrpc="2.0")
    sys.stdout.write(json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------- text

WORD = re.compile(r"[a-z0-9']+")


def words(text):
    return WORD.findall(text.lower())


def prompt_tokens(messages):
    return sum(4 + len(words(m["content"])) for m in messages)


def last_user(messages):
    for message in reversed(messages):
        if message["role"] == "user":
            return message["content"]
    return ""


def shape_output(text, max_tokens, stop):
    for marker in stop:
        if marker and marker in text:
            text = text[: text.index(marker)]
    return " ".join(text.split(" ")[:max_tokens])


# ---------------------------------------------------------------------------- params

def need(params, key, kind, where="params"):
    if key not in params:
        raise RPCError(INVALID_PARAMS, "%s.%s is missing" % (where, key))
    value = params[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise RPCError(INVALID_PARAMS, "%s.%s must be a whole number" % (where, key))
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise RPCError(INVALID_PARAMS, "%s.%s must be a number" % (where, key))
    if kind not in (int, float) and not isinstance(value, kind):
        raise RPCError(INVALID_PARAMS, "%s.%s has the wrong type" % (where, key))
    return value


def chat(value, where):
    if not isinstance(value, list):
        raise RPCError(INVALID_PARAMS, "%s must be an array of messages" % where)
    for message in value:
        if not (isinstance(message, dict) and isinstance(message.get("role"), str) and isinstance(message.get("content"), str)):
            raise RPCError(INVALID_PARAMS, "%s: every message has a string role and content" % where)
    return value


def examples(value, where):
    if not isinstance(value, list):
        raise RPCError(INVALID_PARAMS, "%s must be an array of examples" % where)
    result = []
    for index, example in enumerate(value):
        if not isinstance(example, dict) or not isinstance(example.get("completion"), str):
            raise RPCError(INVALID_PARAMS, "%s[%d] needs messages and a completion" % (where, index))
        messages = chat(example.get("messages"), "%s[%d].messages" % (where, index))
        result.append((words(last_user(messages)), example["completion"].strip(), prompt_tokens(messages) + len(words(example["completion"]))))
    return result


# ---------------------------------------------------------------------------- the toy model

def probabilities(model, features):
    scores = []
    for label in model["labels"]:
        weights = model["weights"][label]
        scores.append(model["bias"][label] + sum(weights.get(word, 0.0) for word in features))
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


def predict(model, features):
    probs = probabilities(model, features)
    best = max(range(len(probs)), key=lambda index: (probs[index], -index))
    return model["labels"][best]


def mean_loss(model, batch):
    if not batch:
        return 0.0
    total = 0.0
    for features, label, _ in batch:
        probs = probabilities(model, features)
        total -= math.log(max(probs[model["labels"].index(label)], 1e-12))
    return total / len(batch)


def sgd_step(model, batch):
    """One step of plain SGD on the mean cross-entropy of the batch."""
    gradients = {label: {} for label in model["labels"]}
    bias = {label: 0.0 for label in model["labels"]}
    for features, target, _ in batch:
        probs = probabilities(model, features)
        for index, label in enumerate(model["labels"]):
            g = (probs[index] - (1.0 if label == target else 0.0)) / len(batch)
            bias[label] += g
            for word in features:
                gradients[label][word] = gradients[label].get(word, 0.0) + g
    for label in model["labels"]:
        model["bias"][label] -= STEP_SIZE * bias[label]
        weights = model["weights"][label]
        for word in sorted(gradients[label]):
            weights[word] = weights.get(word, 0.0) - STEP_SIZE * gradients[label][word]


def order(count, seed, epoch):
    """A shuffled order of the training set that depends only on the seed and the epoch."""
    key = lambda index: hashlib.sha256(("%d:%d:%d" % (seed, epoch, index)).encode()).hexdigest()
    return sorted(range(count), key=key)


def load_model(artifact):
    if artifact is None:
        return None
    if not isinstance(artifact, str):
        raise RPCError(INVALID_PARAMS, "params.artifact must be a string or null")
    try:
        with open(artifact, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise RPCError(ARTIFACT_NOT_FOUND, "artifact not found: %s" % artifact, {"artifact": artifact})
    except (OSError, ValueError) as error:
        raise RPCError(FAILED, "cannot read artifact %s: %s" % (artifact, error), {"artifact": artifact})


# ---------------------------------------------------------------------------- methods

def describe(params):
    version = need(params, "protocol_version", str)
    if version.split(".")[0] != PROTOCOL_VERSION.split(".")[0]:
        raise RPCError(UNSUPPORTED_PROTOCOL, "this plugin speaks exec protocol %s, not %s" % (PROTOCOL_VERSION, version), {"supported": [PROTOCOL_VERSION]})
    return {
        "protocol_version": PROTOCOL_VERSION,
        "name": NAME,
        "version": VERSION,
        "data_leaves_machine": False,
        "fine_tuning_methods": METHODS,
        "max_concurrency": 1,
        "embeddings": {"max_batch_size": EMBED_BATCH},
    }


def generate(params):
    messages = chat(need(params, "messages", list), "params.messages")
    max_tokens = need(params, "max_tokens", int)
    stop = need(params, "stop", list)
    model = load_model(params.get("artifact"))
    question = words(last_user(messages))
    if model is not None:
        text = predict(model, question)
    else:
        # Nearest in-context demonstration: a user message answered by the assistant.
        best, overlap = "unknown", 0
        for ask, reply in zip(messages, messages[1:]):
            if ask["role"] == "user" and reply["role"] == "assistant":
                shared = len(set(words(ask["content"])) & set(question))
                if shared > overlap:
                    best, overlap = reply["content"].strip(), shared
        text = best
    text = shape_output(text, max_tokens, [s for s in stop if isinstance(s, str)])
    return {
        "text": text,
        "usage": {"prompt_tokens": prompt_tokens(messages), "completion_tokens": len(words(text)), "cached_prompt_tokens": 0},
    }


def score(params):
    text = need(params, "text", str)
    model = load_model(params.get("artifact"))
    tokens = words(text)
    if not tokens:
        return {"nats": 0.0, "tokens": 0}
    counts = (model or {}).get("unigrams", {})
    total = sum(counts.values())
    nats = sum(-math.log((counts.get(word, 0) + 1) / (total + VOCABULARY_SIZE)) for word in tokens)
    return {"nats": nats / len(tokens), "tokens": len(tokens)}


def embed(params):
    """Hashed bag of words: each word adds 1 to one of EMBEDDING_DIMENSION dimensions."""
    texts = need(params, "texts", list)
    if len(texts) > EMBED_BATCH or not all(isinstance(text, str) for text in texts):
        raise RPCError(INVALID_PARAMS, "params.texts must be at most %d strings" % EMBED_BATCH)
    vectors, tokens = [], 0
    for text in texts:
        vector = [0.0] * EMBEDDING_DIMENSION
        for word in words(text):
            tokens += 1
            digest = hashlib.sha256(word.encode("utf-8")).digest()
            vector[int.from_bytes(digest[:4], "little") % EMBEDDING_DIMENSION] += 1.0
        vectors.append(vector)
    return {"vectors": vectors, "prompt_tokens": tokens}


def open_artifact(params):
    artifact = need(params, "artifact", str)
    try:
        with open(artifact, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except FileNotFoundError:
        raise RPCError(ARTIFACT_NOT_FOUND, "artifact not found: %s" % artifact, {"artifact": artifact})
    except OSError as error:
        raise RPCError(FAILED, "cannot read artifact %s: %s" % (artifact, error), {"artifact": artifact})
    return {"identity": "sha256:" + digest}


def write_json(path, value):
    """Writes atomically: a crash leaves the old file or the new one, never half of one."""
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def finetune(params, request_id):
    method = need(params, "method", str)
    if method not in METHODS:
        raise RPCError(INVALID_PARAMS, "this plugin fine-tunes with %s, not %s" % (", ".join(METHODS), method))
    options = need(params, "options", dict)
    train = examples(need(params, "train", list), "params.train")
    validation = examples(need(params, "validation", list), "params.validation")
    work = need(params, "work_directory", str)
    job = need(params, "job_key", str)
    if not train:
        raise RPCError(INVALID_PARAMS, "params.train is empty")
    epochs = max(1, math.ceil(need(options, "epochs", float, "params.options")))
    batch_size = max(1, need(options, "batch_size", int, "params.options"))
    seed = need(options, "seed", int, "params.options")
    per_epoch = math.ceil(len(train) / batch_size)
    total = epochs * per_epoch
    if options.get("max_steps") is not None:
        total = max(1, min(total, need(options, "max_steps", int, "params.options")))

    os.makedirs(work, exist_ok=True)
    checkpoint_path = os.path.join(work, CHECKPOINT)
    started = time.monotonic()
    state = None
    if os.path.exists(checkpoint_path):
        try:
            with open(checkpoint_path, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            state = None
        if not isinstance(state, dict) or state.get("job_key") != job or state.get("total_steps") != total:
            log("ignoring a checkpoint of another job in %s" % work)
            state = None
    resumed_from = state["step"] if state else 0
    if state is None:
        labels = sorted({label for _, label, _ in train})
        state = {
            "job_key": job, "total_steps": total, "step": 0, "wall_s": 0.0, "trained_tokens": 0,
            "train_loss": [],
            "model": {"labels": labels, "weights": {label: {} for label in labels}, "bias": {label: 0.0 for label in labels}},
        }
    else:
        log("resuming job %s from step %d of %d" % (job, resumed_from, total))

    crash_after = os.environ.get("TALLY_EXAMPLE_CRASH_AFTER_STEP")
    model = state["model"]
    for step in range(state["step"] + 1, total + 1):
        epoch, position = divmod(step - 1, per_epoch)
        indices = order(len(train), seed, epoch)[position * batch_size:(position + 1) * batch_size]
        batch = [train[index] for index in indices]
        loss = mean_loss(model, batch)
        sgd_step(model, batch)
        state["step"] = step
        state["trained_tokens"] += sum(tokens for _, _, tokens in batch)
        state["train_loss"].append({"step": step, "loss": round(loss, 6)})
        state["wall_s"] = state["wall_s"] + (time.monotonic() - started)
        started = time.monotonic()
        write_json(checkpoint_path, state)
        send({"method": "progress", "params": {"id": request_id, "phase": "training", "completed": step, "total": total, "detail": "loss %.3f" % loss}})
        if crash_after is not None and crash_after.isdigit() and step == int(crash_after):
            log("exiting after step %d as TALLY_EXAMPLE_CRASH_AFTER_STEP asks" % step)
            sys.stdout.flush()
            os._exit(3)

    unigrams = {}
    for example in need(params, "train", list):
        for message in example["messages"]:
            for word in words(message["content"]):
                unigrams[word] = unigrams.get(word, 0) + 1
    artifact = os.path.join(work, MODEL)
    write_json(artifact, {"format": 1, "labels": model["labels"], "weights": model["weights"], "bias": model["bias"], "unigrams": unigrams})
    notes = ["toy bag-of-words classifier (%d labels, %d words)" % (len(model["labels"]), len({w for weights in model["weights"].values() for w in weights}))]
    if resumed_from:
        notes.append("resumed from step %d of %d" % (resumed_from, total))
    return {
        "artifact": artifact,
        "wall_s": round(state["wall_s"], 6),
        "trained_tokens": state["trained_tokens"],
        "steps": total,
        "train_loss": state["train_loss"],
        "validation_loss": [{"step": total, "loss": round(mean_loss(model, validation), 6)}] if validation else [],
        "notes": notes,
    }


HANDLERS = {"describe": describe, "generate": generate, "score": score, "embed": embed, "open_artifact": open_artifact}


def handle(line):
    try:
        request = json.loads(line)
    except ValueError as error:
        send({"id": None, "error": {"code": PARSE_ERROR, "message": "not JSON: %s" % error}})
        return
    request_id = request.get("id") if isinstance(request, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        request_id = None
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        send({"id": request_id, "error": {"code": INVALID_REQUEST, "message": "not a JSON-RPC 2.0 request"}})
        return
    if "id" not in request:
        return  # a notification: nothing to answer
    if request_id is None:
        send({"id": None, "error": {"code": INVALID_REQUEST, "message": "id must be a whole number"}})
        return
    method, params = request["method"], request.get("params")
    if not isinstance(params, dict):
        send({"id": request_id, "error": {"code": INVALID_PARAMS, "message": "params must be an object"}})
        return
    try:
        if method == "finetune":
            result = finetune(params, request_id)
        elif method in HANDLERS:
            result = HANDLERS[method](params)
        else:
            raise RPCError(METHOD_NOT_FOUND, "unknown method %s" % method)
        send({"id": request_id, "result": result})
    except RPCError as error:
        body = {"code": error.code, "message": error.message}
        if error.data is not None:
            body["data"] = error.data
        send({"id": request_id, "error": body})
    except Exception as error:  # a bug here must not take the plugin down
        log("%s failed: %r" % (method, error))
        send({"id": request_id, "error": {"code": FAILED, "message": "%s failed: %s" % (method, error)}})


def main():
    source = sys.stdin.buffer
    while True:
        line = source.readline(MAX_LINE_BYTES + 1)
        if not line:
            return  # Tally closed stdin: the run is over
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = source.readline(MAX_LINE_BYTES)
            send({"id": None, "error": {"code": INVALID_REQUEST, "message": "request longer than %d bytes" % MAX_LINE_BYTES}})
            continue
        text = line.decode("utf-8", errors="replace").strip()
        if text:
            handle(text)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
