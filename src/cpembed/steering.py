"""Read and rewrite one token's activation at a site: hook context managers, NS and NR.

Every hook is registered by a context manager and removed in its `finally`, so an
exception inside the `with` block (including `StopForward`) never leaves a hook behind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .config import CPConfig
from .sites import SitePath

OWN = "own"  # the auxiliary prompt filled with the sentence itself


class StopForward(Exception):
    """Raised by a hook once everything needed from a forward pass has been read."""


def run_until_stopped(module: nn.Module, **inputs) -> None:
    """Call `module(**inputs)`; a hook raises StopForward once it has read what it needs."""
    try:
        module(**inputs)
    except StopForward:
        return
    raise RuntimeError("the forward pass ended without reaching the hooked layer")  # a bug, not bad input


def norm_scaling(v_nor: torch.Tensor, v_aux: torch.Tensor, alpha: float) -> torch.Tensor:
    """NS: `alpha * (v_nor - v_aux)`."""
    return alpha * (v_nor - v_aux)


def norm_recovering(v_nor: torch.Tensor, v_aux: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """NR: `(v_nor - v_aux) * ||v_nor|| / (||v_nor - v_aux|| + eps)`, norms over the whole vector."""
    delta = v_nor - v_aux
    return delta * v_nor.norm(dim=-1, keepdim=True) / (delta.norm(dim=-1, keepdim=True) + eps)


def steer(v_nor: torch.Tensor, v_aux: torch.Tensor, norm: str = "scale", alpha: float = 1.0) -> torch.Tensor:
    """The patched vector: NS (`norm="scale"`) or NR (`norm="recover"`), computed in float32."""
    v_nor, v_aux = v_nor.float(), v_aux.float()
    if norm == "recover":
        return norm_recovering(v_nor, v_aux)
    return norm_scaling(v_nor, v_aux, alpha)


def _rows(positions: torch.Tensor) -> torch.Tensor:
    """Row indices that broadcast against `positions`: (B,) picks one token a row, (B, k) picks k."""
    rows = torch.arange(positions.shape[0], device=positions.device)
    return rows.view(-1, *([1] * (positions.dim() - 1)))


@contextmanager
def _hook(module: nn.Module, side: str, rewrite: Callable[[torch.Tensor], torch.Tensor | None]) -> Iterator[None]:
    """Call `rewrite(x)` on the module's first input or its output; a returned tensor replaces x."""
    if side == "input":

        def pre_hook(_module, args):
            new = rewrite(args[0])
            return None if new is None else (new, *args[1:])

        handle = module.register_forward_pre_hook(pre_hook)
    else:

        def post_hook(_module, _args, output):
            x = output[0] if isinstance(output, tuple) else output
            new = rewrite(x)
            if new is None:
                return None
            return (new, *output[1:]) if isinstance(output, tuple) else new

        handle = module.register_forward_hook(post_hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def capture(
    module: nn.Module, path: SitePath, positions: torch.Tensor, into: list[torch.Tensor], stop: bool = False
) -> Iterator[None]:
    """Append the activation at `positions` ((B,) or (B, k)) to `into`; raise StopForward if `stop`."""

    def read(x: torch.Tensor) -> None:
        into.append(x[_rows(positions), positions].clone())  # (B, D) or (B, k, D)
        if stop:
            raise StopForward

    with _hook(module, path.side, read):
        yield


@contextmanager
def patch(
    module: nn.Module,
    path: SitePath,
    positions: torch.Tensor,
    replace: Callable[[torch.Tensor], torch.Tensor],
) -> Iterator[None]:
    """Replace the activation at `positions` (one per row) by `replace(current)`; nothing else changes."""

    def write(x: torch.Tensor) -> torch.Tensor:
        rows = _rows(positions)
        x = x.clone()
        x[rows, positions] = replace(x[rows, positions]).to(x.dtype)
        return x

    with _hook(module, path.side, write):
        yield


@contextmanager
def copy_token(module: nn.Module, path: SitePath, source: torch.Tensor, target: int) -> Iterator[None]:
    """Overwrite the activation at column `target` of every row with the one at `source` ((B,), one per row)."""

    def write(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, target] = x[_rows(source), source]
        return x

    with _hook(module, path.side, write):
        yield


@contextmanager
def set_token(module: nn.Module, path: SitePath, target: int, vector: torch.Tensor) -> Iterator[None]:
    """Overwrite the activation at column `target` of every row with `vector`."""

    def write(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, target] = vector.to(x.dtype)
        return x

    with _hook(module, path.side, write):
        yield


@dataclass(frozen=True)
class Steering:
    """One way to rewrite the last token's vector at one site of one layer.

    `replace(v_nor, v_aux)` gives the new vector, where `v_aux` is the site's vector at the last
    token of `aux_template` filled with the sentences named `aux_source` ("own": the sentence
    itself; another name: a list handed to `encode`), or None when `aux_template` is None.
    `key` names the steering wherever results are kept (the embedding cache, search records).
    """

    key: str
    layer: int  # 1-based, as in the paper
    site: str
    replace: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    aux_template: str | None = None
    aux_source: str = OWN

    @staticmethod
    def of(cp: CPConfig) -> Steering:
        """Contrastive Prompting itself: NS or NR of the sentence's own auxiliary vector."""
        return Steering(
            repr(cp), cp.layer, cp.site, functools.partial(steer, norm=cp.norm, alpha=cp.alpha), cp.aux_template
        )
