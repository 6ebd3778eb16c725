#!/usr/bin/env python3
"""The `baseline` strategy (method tfidf-logreg) re-done in scikit-learn, on the same rows.

Reads a Tally recipe, loads the train/validation/test files it names, picks the same rows
Tally's runner picks (rows with every field the task templates and target need, then
`run.max_train_examples` / `max_validation_examples` / `max_examples` by Tally's seeded
shuffle), trains TfidfVectorizer (word + char_wb, a FeatureUnion) and LogisticRegression with
the same settings and C selection, and prints its test accuracy. Given the report.json of a
Tally run of the same recipe, it prints Tally's accuracy beside it, checks that both scored
the same test rows, and counts the test rows where the two disagree.

Run by hand (not part of the test suite):

    pip install scikit-learn pyyaml
    tally run my-recipe.yaml --out out/
    python3 scripts/baseline_sklearn.py my-recipe.yaml --report out/report.json

`--set run.max_examples=` (and other mapping keys) changes the recipe as `tally --set` does.

The recipe must contain a `kind: baseline` strategy with `method: tfidf-logreg` (the
default); `--strategy NAME` picks one when there are several.
"""
import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tally_assets import cache_root  # noqa: E402

MASK = (1 << 64) - 1

# The defaults of the baseline kind's recipe keys (Sources/TallyCore/Strategies/BuiltIn/Baseline.swift).
DEFAULTS = {
    "method": "tfidf-logreg", "word_ngram_min": 1, "word_ngram_max": 2, "char_ngram_min": 2, "char_ngram_max": 5,
    "sublinear_tf": False, "max_features": None, "c": None, "c_grid": [0.01, 0.1, 1, 10, 100], "cv_folds": 5,
    "max_iterations": 1000, "tolerance": 1e-6,
}


# --- Tally's seeded subsampling (Sources/TallyRandom/SplitMix64.swift, TallyCore Data/Example.swift) ---

class SplitMix64:
    """SeededRandom: SplitMix64."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    @staticmethod
    def derived(seed, label):
        """SeededRandom.derived(seed:label:): the seed xor FNV-1a of the label's UTF-8."""
        h = 0xCBF29CE484222325
        for byte in label.encode("utf-8"):
            h = ((h ^ byte) * 0x100000001B3) & MASK
        return SplitMix64(seed ^ h)


def tally_shuffled(n, rng):
    """SplitMix64.shuffle on Array(0..<n): Fisher-Yates from the last position down, each
    position swapped with the high word of next() * (position + 1)."""
    order = list(range(n))
    for position in range(n - 1, 0, -1):
        other = (rng.next() * (position + 1)) >> 64
        order[position], order[other] = order[other], order[position]
    return order


def sample(rows, count, seed, label):
    """Dataset.sample(_:seed:label:): at most `count` rows by a seeded shuffle, in file order."""
    if count is None or count >= len(rows):
        return rows
    chosen = sorted(tally_shuffled(len(rows), SplitMix64.derived(seed, label))[:max(0, count)])
    return [rows[i] for i in chosen]


# --- data and templates (Sources/TallyCore/Data/DatasetLoader.swift, Template.swift) ---

FIELD = re.compile(r"\{\{|\}\}|\{([\w.\-]+)\}")


def render(template, fields):
    def piece(match):
        if match.group(0) == "{{":
            return "{"
        if match.group(0) == "}}":
            return "}"
        return fields.get(match.group(1), "")
    return FIELD.sub(piece, template)


def template_fields(template):
    return [m.group(1) for m in FIELD.finditer(template) if m.group(1)]


def field_text(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


def load_rows(path, needed):
    """JSONL rows with every needed field, in file order, as (id, fields); repeated ids skipped."""
    rows, seen = [], set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle.read().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            fields = {k: t for k, v in obj.items() if k != "messages" and (t := field_text(v)) is not None}
            if not fields:
                continue
            row_id = fields.get("id", f"L{number}")
            if row_id in seen:
                continue
            seen.add(row_id)
            if all(name in fields for name in needed):
                rows.append((row_id, fields))
    return rows


def resolve(path, directory):
    if path.startswith("cache:"):
        return cache_root() / path[len("cache:"):]
    expanded = Path(os.path.expanduser(path))
    return expanded if expanded.is_absolute() else directory / expanded


def normalize(text):
    """Close to Tally's TextNormalizer for labels: lower case, letters and digits only."""
    words = re.sub(r"[^\w\s]|_", " ", text.lower()).split()
    return " ".join(w for w in words if w not in ("a", "an", "the"))


# --- the classifier ---

def make_pipeline(settings, c):
    blocks = []
    if settings["word_ngram_max"] > 0:
        blocks.append(("word", TfidfVectorizer(
            analyzer="word", ngram_range=(settings["word_ngram_min"], settings["word_ngram_max"]),
            sublinear_tf=settings["sublinear_tf"], max_features=settings["max_features"])))
    if settings["char_ngram_max"] > 0:
        blocks.append(("char", TfidfVectorizer(
            analyzer="char_wb", ngram_range=(settings["char_ngram_min"], settings["char_ngram_max"]),
            sublinear_tf=settings["sublinear_tf"], max_features=settings["max_features"])))
    classifier = LogisticRegression(C=c, max_iter=settings["max_iterations"], tol=settings["tolerance"])
    return Pipeline([("features", FeatureUnion(blocks)), ("classifier", classifier)])


def choose_c(settings, train_x, train_y, validation_x, validation_y):
    """Fixed C; else the best validation accuracy; else the best mean accuracy over stratified
    folds of train (StratifiedKFold, no shuffle). Ties go to the smaller C."""
    if settings["c"] is not None:
        return float(settings["c"]), "fixed"
    grid = sorted({float(c) for c in settings["c_grid"]})
    if validation_x:
        scores = []
        for c in grid:
            model = make_pipeline(settings, c).fit(train_x, train_y)
            scores.append(float(np.mean(model.predict(validation_x) == np.array(validation_y))))
        best = int(np.argmax(scores))
        return grid[best], "validation accuracy " + ", ".join(f"{c:g}: {s:.1%}" for c, s in zip(grid, scores))
    folds = min(settings["cv_folds"], len(train_x))
    if folds < 2:
        return 1.0, "too few rows to choose"
    search = GridSearchCV(make_pipeline(settings, 1.0), {"classifier__C": grid}, cv=StratifiedKFold(folds), scoring="accuracy", refit=False)
    search.fit(train_x, train_y)
    scores = search.cv_results_["mean_test_score"]
    return grid[search.best_index_], f"{folds}-fold CV accuracy " + ", ".join(f"{c:g}: {s:.1%}" for c, s in zip(grid, scores))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--strategy", help="name of the baseline strategy (default: the first with kind baseline)")
    parser.add_argument("--report", type=Path, help="report.json of a Tally run of the same recipe, to compare with")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a mapping value as `tally --set` does, e.g. run.max_examples= (empty: remove)")
    args = parser.parse_args()

    recipe = yaml.safe_load(args.recipe.read_text(encoding="utf-8"))
    for change in args.set:
        key, _, value = change.partition("=")
        *parents, last = key.split(".")
        node = recipe
        for part in parents:
            node = node.setdefault(part, {})
        if value == "":
            node.pop(last, None)
        else:
            node[last] = yaml.safe_load(value)
    directory = args.recipe.resolve().parent
    entries = [s for s in recipe["strategies"] if s.get("kind") == "baseline" and (args.strategy is None or s.get("name") == args.strategy)]
    if not entries:
        raise SystemExit(f"{args.recipe}: no baseline strategy" + (f" named {args.strategy}" if args.strategy else ""))
    entry = entries[0]
    name = entry.get("name", "baseline")
    settings = {**DEFAULTS, **{k: v for k, v in entry.items() if k in DEFAULTS}}
    if settings["method"] != "tfidf-logreg":
        raise SystemExit(f"strategy {name} uses method {settings['method']}; this script re-does tfidf-logreg")

    task, data, run = recipe["task"], recipe["data"], recipe.get("run", {})
    seeds = run.get("seeds")
    seed = run.get("seed", seeds[0] if seeds else 0)
    needed = template_fields(task["input"]) + (template_fields(task["context"]) if task.get("context") else []) + [task["target"]]
    labels = task["labels"]
    normalized = [normalize(label) for label in labels]

    def text(fields):
        body = render(task["input"], fields)
        if task.get("context"):
            context = render(task["context"], fields)
            if context:
                return context + "\n\n" + body
        return body

    def split(key, limit, label):
        if key not in data:
            return []
        rows = sample(load_rows(resolve(data[key], directory), needed), run.get(limit), seed, label)
        return rows

    train = split("train", "max_train_examples", "train")
    validation = split("validation", "max_validation_examples", "validation")
    test = split("test", "max_examples", "test")

    def labelled(rows):
        kept = [(row_id, text(f), normalize(f[task["target"]])) for row_id, f in rows]
        return [(row_id, t, labels[normalized.index(y)]) for row_id, t, y in kept if y in normalized]

    train_rows, validation_rows = labelled(train), labelled(validation)
    train_x, train_y = [t for _, t, _ in train_rows], [y for _, _, y in train_rows]
    validation_x, validation_y = [t for _, t, _ in validation_rows], [y for _, _, y in validation_rows]

    started = time.perf_counter()
    c, how = choose_c(settings, train_x, train_y, validation_x, validation_y)
    model = make_pipeline(settings, c).fit(train_x, train_y)
    seconds = time.perf_counter() - started
    predictions = model.predict([text(f) for _, f in test])
    expected = [f[task["target"]] for _, f in test]
    correct = [normalize(p) == normalize(e) for p, e in zip(predictions, expected)]
    accuracy = float(np.mean(correct))
    import sklearn
    print(f"{len(test)} test, {len(train_rows)} train, {len(validation_rows)} validation rows (seed {seed})")
    print(f"scikit-learn {sklearn.__version__}: C = {c:g} ({how}); trained in {seconds:.2f} s")
    print(f"scikit-learn accuracy: {accuracy:.1%} ({sum(correct)}/{len(correct)})")

    if args.report:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        row = next((s for s in report["strategies"] if s["name"] == name), None)
        if row is None:
            raise SystemExit(f"{args.report}: no strategy named {name}")
        tally = row["accuracy"]["value"]
        print(f"Tally accuracy:        {tally:.1%} ({row['model']})")
        print(f"difference:            {100 * (accuracy - tally):+.1f} points")
        answers = {e["id"]: next((a for a in e["answers"] if a["strategy"] == name), None) for e in report["examples"]}
        ours = {row_id: p for (row_id, _), p in zip(test, predictions)}
        if set(answers) != set(ours):
            print(f"WARNING: the report scored other test rows ({len(set(answers) ^ set(ours))} differ): check the subsampling")
        else:
            disagree = sum(1 for row_id, a in answers.items() if a is None or normalize(a.get("answer") or "") != normalize(ours[row_id]))
            print(f"same {len(ours)} test rows; predictions differ on {disagree}")


if __name__ == "__main__":
    main()
