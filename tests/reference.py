"""The plain reference: two full forward passes per sentence, one sentence at a time, with hooks.

Deliberately naive and independent of cpembed's engine: no padding, no early stop, the
full causal LM (LM head included), `output_hidden_states`, NS/NR written out here.
"""

from __future__ import annotations

import torch

from cpembed import CPConfig, LanguageModel, preprocess
from cpembed.config import TPConfig


def _site(lm: LanguageModel, cp: CPConfig):
    layer = lm.model.model.layers[cp.layer - 1]
    return {"heads": (layer.self_attn.o_proj, True), "ffn": (layer.mlp, False), "hidden": (layer, False)}[cp.site]


def reference_aux_vector(lm: LanguageModel, cp: CPConfig, sentence: str) -> torch.Tensor:
    """The site's activation at the last token of the auxiliary prompt filled with `sentence`."""
    text = preprocess(sentence)
    module, on_input = _site(lm, cp)
    store = {}

    def grab(x):
        store["v"] = x[0, -1].clone()

    if on_input:
        handle = module.register_forward_pre_hook(lambda _m, a: grab(a[0]))
    else:
        handle = module.register_forward_hook(lambda _m, _a, o: grab(o))
    try:
        with torch.no_grad():
            prompt = cp.aux_template.replace("{sentence}", text)
            ids = torch.tensor([lm.tokenizer(prompt)["input_ids"]], device=lm.device)
            lm.model(ids)  # the whole auxiliary prompt through every layer
    finally:
        handle.remove()
    return store["v"]


def reference_embedding(
    lm: LanguageModel,
    templates: list[str],
    sentence: str,
    cp: CPConfig | None,
    output_layer: int,
    control: str | None = None,
    aux_sentence: str | None = None,
    aux_vector: torch.Tensor | None = None,
    tp: TPConfig | None = None,
) -> torch.Tensor:
    """`control` ("zero", "scale", "shuffle", "mean") replaces CP's patch at `cp`'s layer and site;
    `aux_sentence` (shuffle) replaces the sentence in the auxiliary prompt; `aux_vector` (mean)
    replaces the auxiliary pass altogether. `tp` adds Token Prepending to the normal prompt."""
    text = preprocess(sentence)
    with torch.no_grad():
        v_aux = aux_vector
        if cp is not None and control in (None, "shuffle"):
            v_aux = reference_aux_vector(lm, cp, aux_sentence or sentence)
        if cp is not None:
            module, on_input = _site(lm, cp)

        outputs = []
        for template in templates:
            ids = torch.tensor([lm.tokenizer(template.replace("{sentence}", text))["input_ids"]], device=lm.device)
            prepending = []
            if tp is not None:
                ids, prepending = _token_prepending(lm, template, text, tp)
            handle = None
            if cp is not None:

                def steer(x):
                    x = x.clone()
                    v_nor = x[0, -1]
                    if control == "zero":
                        x[0, -1] = 0.0
                        return x
                    if control == "scale":
                        x[0, -1] = cp.alpha * v_nor
                        return x
                    delta = v_nor - v_aux
                    if cp.norm == "scale":
                        x[0, -1] = cp.alpha * delta
                    else:
                        x[0, -1] = delta * v_nor.norm() / (delta.norm() + 1e-7)
                    return x

                if on_input:
                    handle = module.register_forward_pre_hook(lambda _m, a: (steer(a[0]),))
                else:
                    handle = module.register_forward_hook(lambda _m, _a, o: steer(o))
            try:
                hidden_states = lm.model(ids, output_hidden_states=True).hidden_states
            finally:
                for h in [handle, *prepending]:
                    if h is not None:
                        h.remove()
            outputs.append(hidden_states[output_layer][0, -1])
        return torch.stack(outputs).mean(0).cpu()  # where the encoder returns its embeddings


def _token_prepending(lm: LanguageModel, template: str, text: str, tp: TPConfig):
    """The TP prompt's ids (a placeholder id between `... :` and ` "sentence" ...`) and its hooks:
    the placeholder's embedding, then the last token's state copied onto it at the input of
    layers first..last. Written out here, one sentence at a time, without the engine."""
    left = template[: template.index('"{sentence}')].rstrip()
    opening = lm.tokenizer(left)["input_ids"]
    rest = lm.tokenizer(template[len(left) :].replace("{sentence}", text), add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[*opening, 0, *rest]], device=lm.device)
    where = len(opening)
    vector = torch.randn(lm.model.config.hidden_size, generator=torch.Generator().manual_seed(tp.seed))

    def embed(_m, _a, out):
        out = out.clone()
        out[0, where] = vector.to(out.device, out.dtype)
        return out

    def prepend(_m, args):
        x = args[0].clone()
        x[0, where] = x[0, -1]
        return (x, *args[1:])

    handles = [] if tp.first == 1 else [lm.model.get_input_embeddings().register_forward_hook(embed)]
    for layer in range(tp.first, tp.last + 1):
        handles.append(lm.model.model.layers[layer - 1].register_forward_pre_hook(prepend))
    return ids, handles


def encoder_reference(encoder, sentences: list[str], cp: CPConfig | None, tp: TPConfig | None = None) -> torch.Tensor:
    """`reference_embedding` of each sentence with `encoder`'s model, prompt and output layer."""
    templates = [t.text for t in encoder.prompt.templates]
    return torch.stack(
        [reference_embedding(encoder.lm, templates, s, cp, encoder.output_layer, tp=tp) for s in sentences]
    )
