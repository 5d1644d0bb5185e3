"""The auxiliary wordings `cpembed tune --aux-prompts` tries beside the paper's "irrelevant information".

The candidates come from a small grammar: what the auxiliary prompt asks for (`ASKS`) in each of
a few frames that place the sentence (`FRAMES`), plus wordings written by hand (`HAND_WRITTEN`).
The paper's prompt is the first ask in the first frame. tune screens each with NR at every layer
it searches (NR has no alpha to tune). On SmolLM2-135M the best of them beat the paper's prompt by
0.75 on the mean of the STS-B dev splits and lost on SciFact and multilingual dev (docs/RESULTS.md,
"A searched auxiliary prompt"), so they are tried only on request.
"""

from __future__ import annotations

from ..errors import InvalidValueError
from ..prompts import IRRELEVANT, Template

# What the auxiliary prompt asks the model to put in one word: information a sentence embedding
# should not carry (the paper's first four), or the sentence's form rather than its meaning.
ASKS = (
    "irrelevant information",
    "redundant information",
    "background information",
    "unimportant information",
    "stop words",
    "writing style",
    "syntax",
    "tone",
    "filler words",
)
# Where the sentence sits; "{ask}" and "{sentence}" are filled in. The first is the paper's frame.
FRAMES = {
    "of": 'The {ask} of this sentence : "{sentence}" means in one word:"',
    "after": 'This sentence : "{sentence}" , its {ask} means in one word:"',
    "ignoring": 'Ignoring its meaning , the {ask} of this sentence : "{sentence}" in one word:"',
}
HAND_WRITTEN = {
    "surface": 'The words of this sentence : "{sentence}" , not what it means, in one word:"',
    "generic": 'What any sentence like this one : "{sentence}" has in common, in one word:"',
    "noise": 'Everything in this sentence : "{sentence}" except its meaning, in one word:"',
}


def aux_candidates(asks=ASKS, frames=FRAMES, hand_written=HAND_WRITTEN) -> dict[str, str]:
    """Name -> auxiliary template: each ask in each frame ("stop words / of"), then the hand-written ones."""
    candidates = {f"{ask} / {frame}": text.replace("{ask}", ask) for frame, text in frames.items() for ask in asks} | {
        f"hand: {name}": text for name, text in hand_written.items()
    }
    for text in candidates.values():
        Template(text)  # exactly one {sentence} each, or an error that shows the template
    if IRRELEVANT not in candidates.values():
        raise InvalidValueError("the candidates must include the paper's auxiliary prompt, to compare against")
    return candidates
