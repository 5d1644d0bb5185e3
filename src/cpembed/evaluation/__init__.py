"""Evaluation on SentEval-format data: STS and transfer tasks, and the reproduction report."""
