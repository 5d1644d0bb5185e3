"""Embed a few sentences on the default model and compare cosine similarities with and without CP."""

from cpembed import CPEncoder

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing the guitar.",
    "A man is playing a flute.",
    "The stock market fell sharply after the announcement.",
    "Shares dropped steeply once the news came out.",
]
PAIRS = [  # (i, j, what the pair is)
    (0, 1, "paraphrase"),
    (3, 4, "paraphrase"),
    (0, 2, "same frame, other instrument"),
    (0, 3, "unrelated"),
    (1, 4, "unrelated"),
]


def matrix(title: str, similarity) -> None:
    print(f"\n{title}")
    print("      " + "  ".join(f"[{j}]  " for j in range(len(SENTENCES))))
    for i, row in enumerate(similarity):
        print(f"[{i}]  " + "  ".join(f"{x:.3f}" for x in row))


if __name__ == "__main__":
    steered = CPEncoder()  # smollm2-135m, PromptEOL, CP with the default settings
    plain = CPEncoder(steered.lm, cp=None)  # the same loaded model, without CP
    print(steered)
    for i, sentence in enumerate(SENTENCES):
        print(f"[{i}] {sentence}")
    results = {}
    for name, encoder in (("no CP", plain), ("CP", steered)):
        embeddings = encoder.encode(SENTENCES)
        results[name] = encoder.similarity(embeddings, embeddings)
        matrix(f"cosine similarity, PromptEOL, {name}:", results[name])
    print("\nLast-token embeddings of an LLM are anisotropic, so every cosine is high: what matters is")
    print("the order. Paraphrases should score above the other pairs.\n")
    print(f"{'pair':37} {'no CP':>7} {'CP':>7}")
    for i, j, kind in PAIRS:
        print(f"[{i}]-[{j}] {kind:29} {results['no CP'][i, j]:7.3f} {results['CP'][i, j]:7.3f}")
