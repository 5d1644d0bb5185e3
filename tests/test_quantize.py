"""Quantized output: sentence-transformers' int8 / uint8 / binary / ubinary, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from cpembed import CPConfig, CPEncoder
from cpembed.errors import InvalidValueError
from cpembed.quantize import PRECISIONS, calibration_ranges, quantize

ROWS = np.random.default_rng(0).normal(size=(20, 64)).astype(np.float32)


def test_each_precision_keeps_what_it_should():
    ranges = calibration_ranges(ROWS)
    int8, uint8 = quantize(ROWS, "int8", ranges), quantize(ROWS, "uint8", ranges)
    assert int8.dtype == np.int8 and uint8.dtype == np.uint8 and int8.shape == ROWS.shape
    np.testing.assert_array_equal(int8.astype(np.int16) + 128, uint8)  # the same steps, offset
    assert uint8.min(axis=0).max() == 0 and uint8.max() == 255  # each dimension's minimum is step 0
    steps = (ranges[1] - ranges[0]) / 255
    assert (np.abs(ranges[0] + uint8 * steps - ROWS) <= steps + 1e-6).all()  # within one step
    bits = quantize(ROWS, "ubinary")
    assert bits.shape == (20, 8) and bits.dtype == np.uint8
    np.testing.assert_array_equal(np.unpackbits(bits, axis=1).astype(bool), ROWS > 0)
    np.testing.assert_array_equal(quantize(ROWS, "binary").astype(np.int16) + 128, bits)
    assert quantize(ROWS, "float32") is not None and quantize(ROWS, "float32").dtype == np.float32
    with pytest.raises(InvalidValueError, match="precision must be one of"):
        quantize(ROWS, "int4")
    with pytest.raises(InvalidValueError, match="ranges must have shape"):
        quantize(ROWS, "int8", ranges[:, :3])


@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p != "float32"])
def test_the_same_numbers_as_sentence_transformers(precision):
    quantization = pytest.importorskip("sentence_transformers.util.quantization")
    np.testing.assert_array_equal(quantize(ROWS, precision), quantization.quantize_embeddings(ROWS, precision))


def test_encode_quantizes_its_rows(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0))
    texts = ["A cat sits.", "Two dogs run.", "A bird sings."]
    rows = encoder.encode(texts)
    for precision in PRECISIONS:
        np.testing.assert_array_equal(encoder.encode(texts, precision=precision), quantize(rows, precision))
