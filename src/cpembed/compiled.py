"""Compile the parts of every decoder layer that CP never hooks, for long jobs.

CP's hooks (steering.py) sit on the attention output projection, the feed-forward block's
output and the layer's output, and they are registered per batch: compiling a module whose
hooks change would rebuild its graph every batch. So only hook-free code is compiled: each
feed-forward block's and each norm's `forward`. Their hooks (the `ffn` site) still run, eagerly,
in `Module.__call__` around the compiled function, and the attention stays eager. Shapes are
dynamic, so one graph serves every batch, and torch keeps compiled graphs on disk
(`TORCHINDUCTOR_CACHE_DIR`, default under cpembed's cache folder), so a later process mostly
reloads them.

What it gains is small: on the default model, 2 cores, a few percent (docs/PERFORMANCE.md,
"The compiled path"; the default recipe in bfloat16 1.07x, 1.01..1.11, the only interval clear of
1), and the compiler's imports add about 65 MB to the process. Whole compiled layers (CP's hooks
traced in) were no faster in a probe. Compiling costs seconds in a fresh process, so "auto"
compiles a bfloat16 model on a CPU once it has been asked for `COMPILE_AFTER` sentences, past
the measured break-even, and never elsewhere.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import torch
from torch import nn

from .errors import InvalidValueError
from .models import LanguageModel, cache_dir

logger = logging.getLogger(__name__)

COMPILE_AFTER = 2000  # sentences; above the measured break-even (1,369: docs/PERFORMANCE.md, "The compiled path")


CompileMode = bool | Literal["auto"]


def check_mode(mode: object) -> CompileMode:
    """`mode` if it is True, False or "auto"; else a clear error."""
    if mode is True or mode is False or mode == "auto":
        return mode
    raise InvalidValueError(f"compile must be True, False or 'auto', got {mode!r}")


def compile_when_worth_it(lm: LanguageModel, mode: CompileMode, sentences: int) -> None:
    """Count `sentences` more asked of `lm`, and compile it if `mode` says so now: True at once,
    "auto" in bfloat16 on a CPU once the model's sentences reach COMPILE_AFTER, False never."""
    lm.sentences_asked += sentences
    if should_compile(lm, mode, long_job=lm.sentences_asked >= COMPILE_AFTER):
        compile_model(lm)


def should_compile(lm: LanguageModel, mode: CompileMode, long_job: bool) -> bool:
    """Whether to compile `lm` now: not twice, never with False, always with True, and with "auto"
    for a long job in bfloat16 on a CPU, the one place it was measured to pay."""
    if lm.compiled is not None or mode is False:
        return False
    return mode is True or (long_job and lm.device.type == "cpu" and lm.dtype == torch.bfloat16)


def keep_eager(lm: LanguageModel) -> LanguageModel:
    """`lm`, never to be compiled: for runs whose numbers must match the eager engine's (compiled
    bfloat16 rounds differently: cosine 0.9993 or more to eager on the default recipe)."""
    lm.compiled = False
    return lm


def hook_free_modules(lm: LanguageModel) -> list[nn.Module]:
    """Each layer's feed-forward block and norms, and the final norm: the modules CP never rewrites
    from inside (a hook on one of them runs outside its compiled `forward`)."""
    found = []
    for layer in lm.layers:
        for name, module in layer.named_modules():
            if name == "mlp" or type(module).__name__.endswith("RMSNorm"):
                found.append(module)
    norm = getattr(lm.decoder, "norm", None)
    return found + ([norm] if norm is not None else [])


def compile_model(lm: LanguageModel) -> bool:
    """Compile `hook_free_modules(lm)` in place, once per loaded model; False (with a warning)
    where this machine cannot compile (no C++ compiler, an unsupported platform): the model then
    runs eagerly, as before."""
    if lm.compiled is not None:
        return lm.compiled
    # Beside the model cache, not in /tmp, so that compiled graphs outlive a reboot.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
    lm.compiled = _can_compile(lm.device)
    if lm.compiled:
        for module in hook_free_modules(lm):
            module.forward = torch.compile(module.forward, dynamic=True)  # compiled at its first call
    return lm.compiled


def _can_compile(device: torch.device) -> bool:
    """Whether torch.compile works on `device`: compile and run a tiny function there (compilers
    fail lazily, and a GPU needs its own compiler)."""
    try:
        torch.compile(lambda x: torch.nn.functional.silu(x) * x, dynamic=True)(torch.ones(2, 3, device=device))
    except Exception as error:  # any failure of the compiler stack means: stay eager
        logger.warning("torch.compile is unavailable here, so cpembed runs eagerly (%s)", str(error).splitlines()[0])
        return False
    return True
