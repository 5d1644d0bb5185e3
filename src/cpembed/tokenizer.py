"""The tokenizer the engine runs: a `tokenizers.Tokenizer`, without transformers' wrapper.

The engine needs token ids (with and without the model's special tokens), character offsets, the
pad and end-of-text ids, and decoding; the Rust tokenizer gives all of these. transformers'
wrapper around it costs about 80 MB per process (measured on the default model: 374 against
296 MB peak for the import and the load) and adds nothing the engine uses.

Model folders that cpembed writes itself (built-in models and converted GGUF files, in its cache)
hold the wrapper's tokenizer as saved by `save_pretrained`: its `tokenizer.json` already carries
every adjustment the wrapper made (special tokens added, post-processor), so it is loaded directly.
Any other folder is read through transformers once, and only its Rust tokenizer is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tokenizers


@dataclass(frozen=True)
class Tokenizer:
    """Token ids, offsets and decoding, in the call shape of a transformers tokenizer."""

    backend: tokenizers.Tokenizer
    pad_token_id: int | None
    eos_token_id: int | None

    def __call__(
        self, texts: str | Sequence[str], add_special_tokens: bool = True, return_offsets_mapping: bool = False
    ) -> dict[str, list]:
        """{"input_ids": ids, "offset_mapping": (start, end) per token if asked}: lists for one
        text, lists of lists for several."""
        single = isinstance(texts, str)
        encodings = self.backend.encode_batch([texts] if single else list(texts), add_special_tokens=add_special_tokens)
        out = {"input_ids": [e.ids for e in encodings]}
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encodings]
        return {key: value[0] for key, value in out.items()} if single else out

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    @classmethod
    def of(cls, tokenizer) -> Tokenizer:
        """A transformers fast tokenizer's Rust tokenizer and special ids (a `Tokenizer` is kept)."""
        if isinstance(tokenizer, cls):
            return tokenizer
        return cls(tokenizer.backend_tokenizer, tokenizer.pad_token_id, tokenizer.eos_token_id)


def load_tokenizer(folder: Path, saved_by_cpembed: bool) -> Tokenizer:
    """The tokenizer of a model folder; see the module docstring for which folders skip transformers."""
    if saved_by_cpembed and (folder / "tokenizer.json").is_file():
        backend = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad, eos = (_token_id(backend, config.get(key)) for key in ("pad_token", "eos_token"))
        return Tokenizer(backend, pad, eos)
    from transformers import AutoTokenizer

    return Tokenizer.of(AutoTokenizer.from_pretrained(folder))


def _token_id(backend: tokenizers.Tokenizer, token: str | dict | None) -> int | None:
    """The id of a special token as tokenizer_config.json names it (a string, or {"content": ...})."""
    content = token.get("content") if isinstance(token, dict) else token
    return None if content is None else backend.token_to_id(content)
