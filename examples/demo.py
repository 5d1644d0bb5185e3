"""Does the default rank sentence pairs closer to human judgement than a plain prompt? A small check.

`CPEncoder()` is the default model's best recipe (a prompt, its CP setting and a whitening fitted
on unlabelled tuning sentences, chosen on dev splits; docs/RESULTS.md, "The defaults"); it is
compared with plain PromptEOL on the same loaded model, the embedding everyone starts from.
The pairs below were written for this demo; each gold score follows the STS annotation scale
(5 = same meaning, 4 = same meaning but a detail differs, 3 = roughly equivalent, 2 = not
equivalent but share details, 1 = same topic only, 0 = unrelated).
"""

import numpy as np

from cpembed import CPEncoder
from cpembed.evaluation.data import DataNotFoundError, find_raw_stsb_dir, load_raw_stsb
from cpembed.evaluation.metrics import bootstrap_spearman_difference, paired_cosine, spearman

PAIRS = [  # (first, second, gold score 0-5)
    ("A man is playing a guitar.", "A man is playing the guitar.", 5.0),
    ("The company hired fifty new engineers this year.", "This year the firm took on 50 more engineers.", 4.8),
    ("A plane is taking off.", "An airplane is departing from the runway.", 4.6),
    ("The cat is sleeping on the sofa.", "A cat naps on the couch.", 4.6),
    ("The train to London was delayed by an hour.", "The London train arrived an hour late.", 4.4),
    ("The stock market fell sharply after the announcement.", "Shares dropped steeply once the news came out.", 4.4),
    ("A woman is slicing an onion.", "Someone is cutting an onion with a knife.", 4.2),
    ("Two children are playing football in the park.", "Kids are kicking a ball on the grass.", 3.8),
    ("The government raised taxes on fuel.", "Fuel prices went up after the new tax.", 3.2),
    ("A man is playing a guitar.", "A man is playing a flute.", 2.4),
    ("The meeting was moved to Thursday.", "The meeting was cancelled.", 2.2),
    ("A man is cutting paper with scissors.", "A man is cutting his hair with scissors.", 2.0),
    ("A woman is riding a horse on the beach.", "A woman is riding a bicycle down the street.", 1.6),
    ("A dog is running through the snow.", "A dog is sleeping by the fire.", 1.4),
    ("It is raining heavily in the city.", "The sun is shining over the city.", 1.2),
    ("She is reading a book in the library.", "She is writing a letter at home.", 1.0),
    ("He cooked pasta for dinner.", "The stock market fell sharply after the announcement.", 0.0),
    ("A child is drawing a picture of a house.", "The recipe needs two eggs and a cup of flour.", 0.0),
]


def compare(title: str, plain: CPEncoder, default: CPEncoder, first, second, gold, bar: bool = False) -> tuple:
    """Spearman (x100) of plain PromptEOL and of the default on the same pairs, and the 95%
    paired-bootstrap interval of the difference; `bar` shows each encoding's progress on stderr."""
    n = len(first)
    rows = plain.encode(list(first) + list(second), show_progress_bar=bar)
    before = paired_cosine(rows[:n], rows[n:])
    rows = default.encode(list(first) + list(second), show_progress_bar=bar)
    after = paired_cosine(rows[:n], rows[n:])
    plain_score, default_score = 100 * spearman(before, gold), 100 * spearman(after, gold)
    low, high = bootstrap_spearman_difference(gold, before, after)
    print(
        f"{title}: Spearman {plain_score:.2f} plain PromptEOL, {default_score:.2f} the default; "
        f"difference {default_score - plain_score:+.2f}, 95% interval {low:+.2f}..{high:+.2f}"
    )
    return before, after, low, high


if __name__ == "__main__":
    default = CPEncoder()  # smollm2-135m and its best recipe
    plain = CPEncoder(default.lm, cp=None)  # the same loaded model: plain PromptEOL, no post-processing
    print(default.describe_recipe(), "\n")
    first, second = [a for a, _, _ in PAIRS], [b for _, b, _ in PAIRS]
    gold = np.array([score for _, _, score in PAIRS])
    before, after, low, high = compare(f"{len(PAIRS)} pairs written for this demo", plain, default, first, second, gold)
    print(f"\n{'gold':>4}  {'plain':>6}  {'default':>7}  pair")
    for (a, b, score), x, y in zip(PAIRS, before, after, strict=True):
        print(f"{score:4.1f}  {x:6.3f}  {y:7.3f}  {a} | {b}")
    unrelated = gold == 0
    verdict = "holds 0: too few pairs to tell" if low <= 0 <= high else "excludes 0"
    print(
        f"\nUnrelated pairs (gold 0): cosine {before[unrelated].mean():.2f} plain, {after[unrelated].mean():.2f} with "
        f"the default, whose whitening removes the direction every plain embedding shares. On {len(PAIRS)} pairs "
        f"the interval {verdict}."
    )
    try:
        raw = load_raw_stsb(find_raw_stsb_dir(), "dev")
    except DataNotFoundError:
        print(
            "The raw STS Benchmark is not beside the repo (or in CPEMBED_RAW_DATA), so the 1,500-pair check is skipped."
        )
    else:
        print(
            "\nThe same comparison on the raw STS Benchmark's 1,500 dev pairs: 3,000 sentences to embed twice, "
            "2.5 to 7 minutes on 2 idle CPU cores (Ctrl-C stops here; everything above stands).",
            flush=True,
        )
        try:
            compare("raw STS-B dev", plain, default, raw.sentences1, raw.sentences2, raw.scores, bar=True)
        except KeyboardInterrupt:
            print("Stopped before the 1,500-pair result; docs/results/smollm2-135m/demo.txt has a whole run.")
            raise SystemExit(130) from None
        print("(a dev split: the recipe was chosen on it; the test splits, scored once, are in docs/RESULTS.md)")
