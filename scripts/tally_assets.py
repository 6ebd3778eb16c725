"""Tally's asset cache (SmolLM2-135M-Instruct, data sets), for the Python baseline scripts."""
import os
import warnings
from pathlib import Path


def cache_root() -> Path:
    """Tally's asset cache: $TALLY_CACHE, else $XDG_CACHE_HOME/tally, else ~/.cache/tally."""
    cache = os.environ.get("TALLY_CACHE")
    if not cache:
        xdg = os.environ.get("XDG_CACHE_HOME")
        cache = os.path.join(xdg, "tally") if xdg else os.path.expanduser("~/.cache/tally")
    return Path(cache)


def smollm2_gguf() -> Path:
    """The GGUF file `tally models fetch smollm2-135m-instruct` stores (honours TALLY_CACHE
    and XDG_CACHE_HOME as Tally does)."""
    return cache_root() / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def load_smollm2(threads: int):
    """Imports torch with `threads` threads and loads SmolLM2 from the cached GGUF, dequantized
    to float32, keeping the output quiet (no progress bars or deprecation notes), so a baseline
    prints only its JSON line. Returns (torch, model)."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    path = smollm2_gguf()
    if not path.is_file():
        raise SystemExit(f"{path}: not found; run: tally models fetch smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return torch, model
