"""Embed a few sentences on the default model and compare cosine similarities with and without CP."""

from cpembed import CPEncoder

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing the guitar.",
    "A man is playing a flute.",
    "The stock market fell sharply after the announcement.",
    "Shares dropped steeply once the news came out.",
]


def show(title: str, encoder: CPEncoder) -> None:
    similarity = encoder.similarity(SENTENCES, SENTENCES)
    print(f"\n{title}")
    print("     " + " ".join(f"  [{j}]" for j in range(len(SENTENCES))))
    for i, row in enumerate(similarity):
        print(f"[{i}]  " + " ".join(f"{x:5.3f}" for x in row))


if __name__ == "__main__":
    steered = CPEncoder()  # smollm2-135m, PromptEOL, CP with the default settings
    plain = CPEncoder(steered.lm, cp=None)  # the same loaded model, without CP
    print(steered)
    for i, sentence in enumerate(SENTENCES):
        print(f"[{i}] {sentence}")
    show("cosine similarity, PromptEOL (no CP):", plain)
    show(f"cosine similarity, PromptEOL + CP (layer {steered.cp.layer}, alpha {steered.cp.alpha}):", steered)
