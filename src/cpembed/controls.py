"""What the control interventions need beyond CP itself: a sentence's partner, and a fixed reference set.

`shuffle` contrasts each sentence with the auxiliary vector of another sentence of the same input;
`mean` contrasts it with one fixed vector, the mean auxiliary vector of REFERENCE_SENTENCES, so an
embedding never depends on the batch it came in.
"""

from __future__ import annotations

# Plain, varied sentences of everyday length and topic. Any fixed set would do; this one is ours,
# short, and ships with the package, so `mean` needs no data.
REFERENCE_SENTENCES = (
    "A man is playing a guitar on the stage.",
    "The children are building a sandcastle at the beach.",
    "Stock markets fell sharply after the announcement.",
    "She poured hot water into the teapot.",
    "The committee will meet again next Tuesday.",
    "A small dog is chasing a red ball across the park.",
    "Heavy rain caused flooding in several towns.",
    "He forgot his keys at the office.",
    "The new phone has a larger battery and a better camera.",
    "Two women are talking in a crowded cafe.",
    "The museum is closed on Mondays.",
    "Scientists found water ice near the moon's south pole.",
    "A chef is slicing onions in a busy kitchen.",
    "The train to the airport was delayed by an hour.",
    "I don't think that answer is correct.",
    "The government announced new rules for electric cars.",
    "A cat is sleeping on a warm windowsill.",
    "They planted tomatoes and beans in the garden.",
    "The match ended in a draw after extra time.",
    "Please send me the report before Friday.",
    "A boy is riding a bicycle down a steep hill.",
    "The bridge was built more than a century ago.",
    "Prices of fresh vegetables rose again this month.",
    "She won the prize for her first novel.",
    "A group of people are hiking up a mountain trail.",
    "The software update fixed several security problems.",
    "Nobody expected the concert to sell out so quickly.",
    "A woman is cutting a piece of paper with scissors.",
    "The river froze during the coldest week of the year.",
    "Our flight was cancelled because of the storm.",
    "The doctor advised him to rest for a few days.",
    "A bird is sitting on a branch outside the window.",
)


def partners(texts: list[str]) -> list[int]:
    """For each text, the index of the next text in input order (cyclically) that differs from it.

    Deterministic, and never a text's own copy, so a sentence is never contrasted with its own
    auxiliary vector.
    """
    if not texts:
        return []
    if len(set(texts)) < 2:
        raise ValueError("the shuffle control needs at least two different sentences in the input")
    n = len(texts)
    # Over the input written twice, so the search wraps around; a run of equal texts shares its end.
    following = [2 * n] * (2 * n)
    for i in range(2 * n - 2, -1, -1):
        following[i] = i + 1 if texts[(i + 1) % n] != texts[i % n] else following[i + 1]
    return [following[i] % n for i in range(n)]


def partner_texts(texts: list[str]) -> list[str]:
    """Each text's shuffle partner itself (see `partners`)."""
    return [texts[i] for i in partners(texts)]
