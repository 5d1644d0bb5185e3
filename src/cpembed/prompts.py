"""Prompt templates, sentence cleanup, and token budgets.

A prompt wraps a sentence so that the model compresses it into the hidden state of the
prompt's last token (the final `"`). When a sentence is too long for the budget we cut the
*sentence*, never the template, so that last token is always the template's own.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import InvalidTypeError, InvalidValueError

PLACEHOLDER = "{sentence}"

# ASCII quotes, a space before the first colon, nothing after the final quote (docs/method.md, Templates).
PROMPTEOL = 'This sentence : "{sentence}" means in one word:"'
PRETENDED_COT = 'After thinking step by step , this sentence : "{sentence}" means in one word:"'
KNOWLEDGE = (
    "The essence of a sentence is often captured by its main subjects and actions, while "
    "descriptive terms provide additional but less central details. With this in mind , "
    'this sentence : "{sentence}" means in one word:"'
)
# The auxiliary prompt of Contrastive Prompting: it asks for what does *not* matter.
IRRELEVANT = 'The irrelevant information of this sentence : "{sentence}" means in one word:"'

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Template:
    """A prompt with exactly one `{sentence}` placeholder."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidTypeError(f"a template must be a str, got {type(self.text).__name__}")
        count = self.text.count(PLACEHOLDER)
        if count != 1:
            raise InvalidValueError(
                f"a template needs exactly one {PLACEHOLDER} placeholder, found {count} in "
                f'{self.text!r}; e.g. \'This sentence : "{{sentence}}" means in one word:"\''
            )

    def fill(self, sentence: str) -> str:
        # str.replace, not str.format: templates may contain other braces.
        return self.text.replace(PLACEHOLDER, sentence)


@dataclass(frozen=True)
class Prompt:
    """A named prompting method: one template, or several whose embeddings are averaged (CK)."""

    name: str
    templates: tuple[Template, ...]
    output_layer: int  # index into hidden_states: 0 = embeddings, -1 = final normed state

    def with_demonstrations(self, demonstrations) -> Prompt:
        """This prompt with worked examples before every template (`demonstrate`); none: itself."""
        demonstrations = demonstration_list(demonstrations)
        if not demonstrations:
            return self
        templates = tuple(Template(demonstrate(t.text, demonstrations)) for t in self.templates)
        return Prompt(f"{self.name}+{len(demonstrations)}demo", templates, self.output_layer)


PROMPTS: dict[str, Prompt] = {
    # PromptEOL's own code reads the last layer; Pretended CoT / Knowledge the penultimate.
    "prompteol": Prompt("prompteol", (Template(PROMPTEOL),), output_layer=-1),
    "cot": Prompt("cot", (Template(PRETENDED_COT),), output_layer=-2),
    "knowledge": Prompt("knowledge", (Template(KNOWLEDGE),), output_layer=-2),
    "ck": Prompt("ck", (Template(PRETENDED_COT), Template(KNOWLEDGE)), output_layer=-2),
}
_ALIASES = {"pretended_cot": "cot", "pretended-cot": "cot", "ke": "knowledge", "eol": "prompteol"}


def resolve_prompt(prompt: str | Prompt | list | tuple) -> Prompt:
    """A built-in prompt by name, a user template containing `{sentence}`, or an ensemble: a list of
    those (or names joined by "+", "prompteol+cot"), whose embeddings are averaged as CK's two are.

    An ensemble reads every template at its first member's output layer: vectors read at different
    layers do not average into anything meaningful.
    """
    if isinstance(prompt, Prompt):
        return prompt
    if isinstance(prompt, str) and "{" not in prompt and "+" in prompt:
        prompt = prompt.split("+")
    if isinstance(prompt, (list, tuple)):
        members = [resolve_prompt(p) for p in prompt]
        if len(members) < 2:
            raise InvalidValueError("an ensemble needs at least two prompts")
        templates = tuple(t for m in members for t in m.templates)
        if len(set(templates)) < len(templates):
            raise InvalidValueError("an ensemble lists the same template twice")
        return Prompt("+".join(m.name for m in members), templates, members[0].output_layer)
    if not isinstance(prompt, str):
        raise InvalidTypeError(f"prompt must be a name or a template string, got {type(prompt).__name__}")
    if "{" in prompt:  # a template, not a name
        return Prompt("custom", (Template(prompt),), output_layer=-1)
    key = _ALIASES.get(prompt.lower(), prompt.lower())
    if key not in PROMPTS:
        raise InvalidValueError(
            f"unknown prompt {prompt!r}: choose one of {', '.join(PROMPTS)}, "
            f"or pass a template with one {PLACEHOLDER} placeholder"
        )
    return PROMPTS[key]


def demonstration_list(demonstrations) -> tuple[tuple[str, str], ...]:
    """(sentence, answer) pairs, checked: each a non-empty sentence and a one-word answer."""
    if demonstrations is None:
        return ()
    if isinstance(demonstrations, (str, bytes)):
        raise InvalidTypeError("demonstrations must be a list of (sentence, answer) pairs, not a string")
    pairs = []
    for i, pair in enumerate(demonstrations):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise InvalidTypeError(
                f"demonstrations[{i}] must be a (sentence, answer) pair of strings, got {pair!r:.60}"
            )
        sentence, answer = pair[0].strip(), pair[1].strip()
        if not sentence or not answer or '"' in answer or PLACEHOLDER in sentence:
            raise InvalidValueError(
                f"demonstrations[{i}] needs a sentence without {PLACEHOLDER} and an answer without '\"', "
                f"got {pair!r:.80}"
            )
        pairs.append((sentence, answer))
    return tuple(pairs)


def demonstrate(template: str, demonstrations) -> str:
    """`template` with worked examples before it, in-context learning for embeddings (Jiang et al.,
    2023): each example is the template filled with its sentence and closed by its answer,
    `This sentence : "A jockey riding a horse." means in one word:"Equestrian". ` + template.

    The examples sit in the template's opening, which the engine computes once per model.
    """
    head = "".join(
        Template(template).fill(preprocess(sentence)) + f'{answer}". '
        for sentence, answer in demonstration_list(demonstrations)
    )
    return head + template


def preprocess(sentence: str) -> str:
    """The cleanup every PromptEOL-family evaluation applies before filling a template.

    Strip; `"` becomes `'` (the template quotes the sentence); a trailing `?` becomes `.`;
    a sentence not ending in `.`, `?`, `"` or `'` gets a final `.`. An empty sentence
    therefore becomes `"."`.
    """
    sentence = sentence.strip().replace('"', "'")
    if sentence.endswith("?"):
        sentence = sentence[:-1] + "."
    if not sentence.endswith((".", "?", '"', "'")):
        sentence += "."
    return sentence


def fit_sentences(tokenizer, templates: list[Template], sentences: list[str], max_length: int) -> list[str]:
    """Sentences cut, token by token from their end, so that every template filled with them fits.

    One cut serves all of a sentence's prompts, so CP's normal and auxiliary prompts (and CK's
    two prompts) always see the same words. Sentences that fit are returned unchanged. The caller
    counts the cuts and reports them once per run (`warn_cut`), not once per batch.
    """
    fitted = list(sentences)
    changed = True
    while changed:  # a cut made for one template can (rarely) need re-checking against another
        changed = False
        for template in templates:
            lengths = [len(ids) for ids in tokenizer([template.fill(s) for s in fitted])["input_ids"]]
            for i, length in enumerate(lengths):
                if length > max_length:
                    fitted[i] = _cut_to_fit(tokenizer, template, fitted[i], max_length, length)
                    changed = True
    return fitted


def warn_cut(count: int, max_length: int) -> None:
    """One warning for all the sentences a run had to cut (inside `one_cut_warning`, at its end)."""
    pending = _pending_cuts.get()
    if pending is not None:
        pending[max_length] = pending.get(max_length, 0) + count
    elif count:
        logger.warning("cut %d sentence(s) to fit max_length=%d tokens (the template is kept whole)", count, max_length)


_pending_cuts: contextvars.ContextVar[dict[int, int] | None] = contextvars.ContextVar("pending_cuts", default=None)


@contextlib.contextmanager
def one_cut_warning() -> Iterator[None]:
    """Gather the cut warnings of everything run inside into one, given at the end: a run that
    encodes in many calls (chunks of a file, of a cached search) warns once, not once a call."""
    if _pending_cuts.get() is not None:  # an outer run gathers them already
        yield
        return
    token = _pending_cuts.set({})
    try:
        yield
    finally:
        pending = _pending_cuts.get()
        _pending_cuts.reset(token)
        for max_length, count in pending.items():
            warn_cut(count, max_length)


def prompt_token_ids(tokenizer, template: Template, sentences: list[str]) -> list[list[int]]:
    """Token ids of each filled template: exactly those of tokenizing the whole prompt."""
    return tokenizer([template.fill(s) for s in sentences])["input_ids"]


def placeholder_token_ids(
    tokenizer, template: Template, sentences: list[str], placeholder: int
) -> tuple[list[list[int]], int]:
    """Token ids of each filled template with the id `placeholder` just before the quote that opens
    the sentence (Token Prepending's place), and that position (the same in every row).

    The text before it is tokenized as a prompt's start (special tokens included), the rest as a
    continuation; the space before the quote stays with the quote, so the sentence and the words
    after it tokenize as in the plain prompt.
    """
    head, _ = template.text.split(PLACEHOLDER, 1)
    cut = len(head[:-1] if head.endswith('"') else head)
    cut = len(template.text[:cut].rstrip())
    opening = tokenizer(template.text[:cut])["input_ids"]
    rest = Template(template.text[cut:])
    tails = tokenizer([rest.fill(s) for s in sentences], add_special_tokens=False)["input_ids"]
    return [[*opening, placeholder, *tail] for tail in tails], len(opening)


def _cut_to_fit(tokenizer, template: Template, sentence: str, max_length: int, length: int) -> str:
    minimum = len(tokenizer(template.fill(""))["input_ids"])
    if minimum > max_length:
        raise InvalidValueError(
            f"max_length={max_length} is shorter than the template itself ({minimum} tokens); "
            f"use max_length >= {minimum + 1}"
        )
    offsets = tokenizer(sentence, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    keep = max(len(offsets) - (length - max_length), 0)
    # Tokens may merge across the cut, so re-tokenize and shorten until the prompt fits.
    while True:
        text = sentence[: offsets[keep - 1][1]] if keep > 0 else ""
        if len(tokenizer(template.fill(text))["input_ids"]) <= max_length:
            return text
        keep -= 1
