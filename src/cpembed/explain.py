"""`cpembed explain`: what CP changes in what the last token reads, and which tokens move the embedding.

For one sentence in the encoder's (first) template, with and without its CP setting:

- attention: how much the last token attends to each token, averaged over heads, at every layer
  from the CP layer to the output layer (eager attention, the weights the model computes);
- saliency: gradient x input of the embedding, |x_t . d(e . e/|e|)/dx_t| per token, normalised to
  sum 1: how much each input token moves the embedding along itself.

The stop-word share (scikit-learn's English stop-word list) of each says whether CP moves weight
away from stop words, as the paper suggests it does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .encoder import CPEncoder
from .engine import auxiliary_vectors
from .errors import InvalidValueError, require_extra
from .prompts import Template, fit_sentences, preprocess, prompt_token_ids
from .sites import site_module
from .steering import Steering, patch


@dataclass
class Explanation:
    tokens: list[str]
    sentence_tokens: np.ndarray  # (T,) bool: the token belongs to the sentence, not the template
    layers: list[int]  # 1-based layers whose attention is shown
    attention: dict[str, np.ndarray]  # "plain" / "CP": (len(layers), T)
    saliency: dict[str, np.ndarray]  # "plain" / "CP": (T,)

    def stop_word_share(self) -> dict[str, dict[str, float]]:
        """The share of the sentence's attention (mean over layers) and saliency on stop words."""
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        words = np.array([t.strip(" \"'.,").lower() in ENGLISH_STOP_WORDS for t in self.tokens])
        stop, inside = words & self.sentence_tokens, self.sentence_tokens
        return {
            run: {
                "attention": float(self.attention[run].mean(0)[stop].sum() / self.attention[run].mean(0)[inside].sum()),
                "saliency": float(self.saliency[run][stop].sum() / self.saliency[run][inside].sum()),
            }
            for run in self.attention
        }


def explain(encoder: CPEncoder, sentence: str) -> Explanation:
    """Attention and saliency of `sentence` with and without `encoder`'s CP setting."""
    if encoder.cp is None:
        raise InvalidValueError("explain compares an embedding with and without CP: give an encoder with a CP setting")
    lm, cp = encoder.lm, encoder.cp
    template = encoder.prompt.templates[0]
    templates = [template, Template(cp.aux_template)]
    text = fit_sentences(lm.tokenizer, templates, [preprocess(sentence)], encoder.max_length)[0]
    ids = prompt_token_ids(lm.tokenizer, template, [text])[0]
    empty = prompt_token_ids(lm.tokenizer, template, [""])[0]
    inside = np.zeros(len(ids), dtype=bool)  # the tokens that differ from the template's own, at both ends
    start = next((i for i, (a, b) in enumerate(zip(ids, empty, strict=False)) if a != b), len(empty))
    end = len(ids) - next((i for i, (a, b) in enumerate(zip(ids[::-1], empty[::-1], strict=False)) if a != b), 0)
    inside[start:end] = True
    with torch.inference_mode():
        v_aux = auxiliary_vectors(lm, cp.aux_template, cp.site, [cp.layer], [text])[cp.layer]
    layers = list(range(cp.layer, encoder.output_layer + 1))
    attention, saliency = {}, {}
    for run in ("plain", "CP"):
        attention[run], saliency[run] = _one_pass(encoder, ids, layers, v_aux if run == "CP" else None)
    # Each token as the text it stands for ("Ġman" -> " man"), not the vocabulary's spelling.
    tokens = [lm.tokenizer.decode([i]) for i in ids]
    return Explanation(tokens, inside, layers, attention, saliency)


def _one_pass(encoder: CPEncoder, ids: list[int], layers: list[int], v_aux) -> tuple[np.ndarray, np.ndarray]:
    lm, cp = encoder.lm, encoder.cp
    last = torch.tensor([len(ids) - 1], device=lm.device)
    embeddings = lm.decoder.get_input_embeddings()(torch.tensor([ids], device=lm.device)).detach().float()
    embeddings.requires_grad_(True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_eager_attention(lm.model))
        if v_aux is not None:
            module, path = site_module(lm.layers[cp.layer - 1], cp.site, lm.model_type)
            replace = Steering.of(cp).replace
            stack.enter_context(patch(module, path, last, lambda v: replace(v, v_aux)))
        out = lm.decoder(
            inputs_embeds=embeddings.to(lm.dtype), output_attentions=True, output_hidden_states=True, use_cache=False
        )
        e = out.hidden_states[encoder.output_layer][0, -1].float()
        (e @ (e.detach() / e.detach().norm())).backward()
    attention = torch.stack([out.attentions[layer - 1][0, :, -1, :].float().mean(0) for layer in layers])
    saliency = (embeddings.grad[0] * embeddings[0]).sum(-1).abs()
    return attention.detach().cpu().numpy(), (saliency / saliency.sum()).detach().cpu().numpy()


@contextlib.contextmanager
def _eager_attention(model):
    """Attention weights exist only in the eager implementation; the model's own is restored after."""
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def explanation_png(explanation: Explanation, path: str | Path, title: str = "") -> Path:
    """Heatmaps of the last token's attention (plain, CP, CP - plain) over layers, and both saliencies."""
    require_extra("eval", "matplotlib")
    import textwrap

    from .evaluation.plots import _pyplot

    plt = _pyplot()
    e = explanation
    width = max(8, 0.35 * len(e.tokens))
    # constrained layout keeps the wrapped title, the colorbars and the token labels inside the figure
    fig, axes = plt.subplots(4, 1, figsize=(width, 10), sharex=True, layout="constrained")
    difference = e.attention["CP"] - e.attention["plain"]
    bound = float(np.abs(difference).max()) or 1.0
    panels = (
        ("attention of the last token, plain", e.attention["plain"], "viridis", None, "attention weight"),
        ("attention of the last token, CP", e.attention["CP"], "viridis", None, "attention weight"),
        ("CP - plain", difference, "RdBu_r", (-bound, bound), "change in weight"),
    )
    for ax, (name, values, cmap, limits, unit) in zip(axes, panels, strict=False):
        image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=limits and limits[0], vmax=limits and limits[1])
        ax.set_yticks(range(len(e.layers)), [str(layer) for layer in e.layers], fontsize=6)
        ax.set_ylabel("layer", fontsize=8)
        ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.02).set_label(unit, fontsize=7)
    x = np.arange(len(e.tokens))
    axes[3].bar(x - 0.2, e.saliency["plain"], 0.4, label="plain")
    axes[3].bar(x + 0.2, e.saliency["CP"], 0.4, label="CP")
    axes[3].set_title("gradient x input: how much each token moves the embedding", fontsize=9)
    axes[3].set_ylabel("share", fontsize=8)
    axes[3].legend(fontsize=8)
    shown = [token.replace("\n", "\\n") if token.strip() else repr(token) for token in e.tokens]
    axes[3].set_xticks(x, shown, rotation=90, fontsize=7)
    for position, inside in zip(x, e.sentence_tokens, strict=True):  # the sentence's own tokens in bold
        axes[3].get_xticklabels()[position].set_fontweight("bold" if inside else "normal")
    axes[3].set_xlabel("input tokens (the template's and, in bold, the sentence's)", fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(title, int(width * 11))), fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
