"""Where in a decoder layer CP reads and writes: architecture -> module paths, kept as data.

A site is a module inside each decoder layer plus which side of it we hook:
- `heads`: the input of the attention output projection, i.e. all heads' contextualized
  value vectors concatenated, width `num_heads * head_dim` (the paper's default);
- `ffn`: the output of the feed-forward block;
- `hidden`: the output of the whole decoder layer (the residual stream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from .errors import UnsupportedArchitectureError

SiteName = Literal["heads", "ffn", "hidden"]
SITES: tuple[SiteName, ...] = ("heads", "ffn", "hidden")


@dataclass(frozen=True)
class SitePath:
    module: str  # path inside a decoder layer ("" = the layer itself)
    side: Literal["input", "output"]


# The LLaMA naming is shared by every architecture cpembed has been checked on; a model type
# that names things differently gets its own row here.
_LLAMA_LIKE = {
    "heads": SitePath("self_attn.o_proj", "input"),
    "ffn": SitePath("mlp", "output"),
    "hidden": SitePath("", "output"),
}
SITE_PATHS: dict[str, dict[str, SitePath]] = {
    model_type: _LLAMA_LIKE
    for model_type in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text", "phi3")
}
# Where the decoder's layer list lives, relative to the base (headless) model.
_LAYER_LISTS = ("layers", "language_model.layers")


def decoder_layers(decoder: nn.Module) -> nn.ModuleList:
    """The decoder's list of transformer blocks."""
    for path in _LAYER_LISTS:
        try:
            layers = decoder.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    raise UnsupportedArchitectureError(
        f"{type(decoder).__name__} has no list of decoder layers at any of {', '.join(_LAYER_LISTS)}: "
        "cpembed supports decoder-only models laid out like LLaMA (llama, mistral, qwen2, qwen3, gemma3)"
    )


def site_module(layer: nn.Module, site: str, model_type: str) -> tuple[nn.Module, SitePath]:
    """The module to hook for `site` in one decoder layer, and which side of it."""
    path = SITE_PATHS.get(model_type, _LLAMA_LIKE)[site]
    try:
        return layer.get_submodule(path.module), path
    except AttributeError:
        raise UnsupportedArchitectureError(
            f"a {model_type!r} decoder layer ({type(layer).__name__}) has no {path.module!r} module, "
            f"so the {site!r} site (an attention output projection for 'heads') cannot be hooked; "
            f"supported architectures: {', '.join(sorted(SITE_PATHS))}"
        ) from None
