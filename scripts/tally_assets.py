"""Where Tally's asset cache keeps SmolLM2-135M-Instruct, for the Python baseline scripts."""
import os
from pathlib import Path


def smollm2_gguf() -> Path:
    """The GGUF file `tally models fetch smollm2-135m-instruct` stores (honours TALLY_CACHE
    and XDG_CACHE_HOME as Tally does)."""
    cache = os.environ.get("TALLY_CACHE")
    if not cache:
        xdg = os.environ.get("XDG_CACHE_HOME")
        cache = os.path.join(xdg, "tally") if xdg else os.path.expanduser("~/.cache/tally")
    return Path(cache) / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
