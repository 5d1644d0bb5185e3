"""Evaluation on SentEval-format data: STS (and, later, transfer tasks)."""
