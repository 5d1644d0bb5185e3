"""The grammar of auxiliary wordings that `cpembed tune --aux-prompts` tries."""

from __future__ import annotations

import pytest

from cpembed.errors import InvalidValueError
from cpembed.evaluation.aux_search import ASKS, FRAMES, HAND_WRITTEN, aux_candidates
from cpembed.prompts import IRRELEVANT


def test_the_grammar_holds_the_papers_prompt_and_every_ask_in_every_frame():
    candidates = aux_candidates()
    assert candidates["irrelevant information / of"] == IRRELEVANT
    assert len(candidates) == len(ASKS) * len(FRAMES) + len(HAND_WRITTEN) == len(set(candidates.values()))
    assert all(t.count("{sentence}") == 1 and "{ask}" not in t for t in candidates.values())
    with pytest.raises(InvalidValueError, match="paper's auxiliary prompt"):
        aux_candidates(asks=("stop words",))
    with pytest.raises(InvalidValueError, match="exactly one"):
        aux_candidates(hand_written={"bad": "no placeholder"})
