"""Templates, sentence cleanup, and the token budget that cuts sentences but never templates."""

from __future__ import annotations

import pytest

from cpembed import PROMPTS, Template, preprocess
from cpembed.prompts import IRRELEVANT, PROMPTEOL, fit_sentences, prompt_token_ids, resolve_prompt


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  a cat sits  ", "a cat sits."),
        ("is it raining?", "is it raining."),
        ('he said "hi"', "he said 'hi'"),
        ("done.", "done."),
        ("it's 'quoted'", "it's 'quoted'"),
        ("", "."),
        ("   \t\n", "."),
    ],
)
def test_preprocess(raw, clean):
    assert preprocess(raw) == clean


def test_templates_match_the_spec():
    assert PROMPTS["prompteol"].templates[0].text == 'This sentence : "{sentence}" means in one word:"'
    assert [t.text for t in PROMPTS["ck"].templates] == [
        PROMPTS["cot"].templates[0].text,
        PROMPTS["knowledge"].templates[0].text,
    ]
    for prompt in PROMPTS.values():
        for template in prompt.templates:
            assert template.text.endswith('means in one word:"')


@pytest.mark.parametrize("text", ["no placeholder", "{sentence} and {sentence}", ""])
def test_template_needs_exactly_one_placeholder(text):
    with pytest.raises(ValueError, match="exactly one"):
        Template(text)


def test_resolve_prompt_names_and_custom_templates():
    assert resolve_prompt("PromptEOL").name == "prompteol"
    assert resolve_prompt("pretended_cot").name == "cot"
    custom = resolve_prompt('In one word, "{sentence}" is:"')
    assert custom.name == "custom" and custom.output_layer == -1
    with pytest.raises(ValueError, match="prompteol, cot, knowledge, ck"):
        resolve_prompt("nonsense")
    with pytest.raises(ValueError, match="exactly one"):
        resolve_prompt("{sentence} {sentence}")


def _ids(tokenizer, template, sentence, max_length):
    (text,) = fit_sentences(tokenizer, [template], [sentence], max_length)
    return prompt_token_ids(tokenizer, template, [text])[0]


def test_truncation_keeps_the_template_tail(tiny_lm):
    tokenizer = tiny_lm.tokenizer
    template = Template(PROMPTEOL)
    long_sentence = preprocess("the stock market fell sharply " * 40)
    full = _ids(tokenizer, template, long_sentence, 10_000)
    cut = _ids(tokenizer, template, long_sentence, 40)
    assert len(full) > 40 >= len(cut)
    tail = tokenizer('" means in one word:"', add_special_tokens=False)["input_ids"]
    assert cut[-len(tail) :] == tail == full[-len(tail) :]
    assert tokenizer.decode(cut).endswith('" means in one word:"')
    assert "the stock market" in tokenizer.decode(cut)  # the sentence's start survives
    short = preprocess("a cat.")
    assert _ids(tokenizer, template, short, 40) == tokenizer(template.fill(short))["input_ids"]


def test_one_cut_fits_every_prompt_of_a_sentence(tiny_lm):
    tokenizer = tiny_lm.tokenizer
    templates = [Template(PROMPTEOL), Template(IRRELEVANT)]  # the auxiliary prompt is longer
    sentences = [preprocess("the stock market fell sharply " * 40), "a cat."]
    fitted = fit_sentences(tokenizer, templates, sentences, max_length=40)  # the encoder reports cuts, once a run
    assert fitted[1] == "a cat." and sentences[0].startswith(fitted[0]) and fitted[0] != sentences[0]
    for template in templates:
        assert len(prompt_token_ids(tokenizer, template, fitted)[0]) <= 40


def test_max_length_shorter_than_the_template_is_refused(tiny_lm):
    with pytest.raises(ValueError, match="shorter than the template"):
        fit_sentences(tiny_lm.tokenizer, [Template(PROMPTEOL)], ["x" * 500], max_length=3)


def test_a_demonstration_is_the_filled_template_closed_by_its_answer():
    from cpembed.prompts import PROMPTEOL, demonstrate

    text = demonstrate(PROMPTEOL, [("A jockey riding a horse", "Equestrian")])
    assert text == (
        'This sentence : "A jockey riding a horse." means in one word:"Equestrian". '
        'This sentence : "{sentence}" means in one word:"'
    )
    assert demonstrate(PROMPTEOL, []) == PROMPTEOL


def test_demonstrations_go_before_every_template_and_rename_the_prompt():
    from cpembed.prompts import PROMPTS

    ck = PROMPTS["ck"].with_demonstrations([("Two kids play chess.", "Game"), ("It rains.", "Weather")])
    assert ck.name == "ck+2demo"
    assert [t.text.count("means in one word") for t in ck.templates] == [3, 3]
    assert all(
        t.text.endswith(original.text) for t, original in zip(ck.templates, PROMPTS["ck"].templates, strict=True)
    )
    assert PROMPTS["ck"].with_demonstrations(None) is PROMPTS["ck"]


@pytest.mark.parametrize(
    "bad, error",
    [
        ("A jockey riding a horse.", "not a string"),
        ([("A jockey riding a horse.",)], "pair of strings"),
        ([("A jockey riding a horse.", 3)], "pair of strings"),
        ([("", "Equestrian")], "needs a sentence"),
        ([("A jockey.", 'Eque"strian')], "needs a sentence"),
        ([("A {sentence} jockey.", "Equestrian")], "needs a sentence"),
    ],
)
def test_bad_demonstrations_name_the_one_at_fault(bad, error):
    from cpembed.prompts import PROMPTS

    with pytest.raises((TypeError, ValueError), match=error):
        PROMPTS["prompteol"].with_demonstrations(bad)


def test_ensembles_by_list_or_plus_and_their_errors():
    assert resolve_prompt("prompteol+cot") == resolve_prompt(["prompteol", "cot"])
    mixed = resolve_prompt(["cot", 'Put simply , "{sentence}" means in one word:"'])
    assert mixed.name == "cot+custom" and mixed.output_layer == -2 and len(mixed.templates) == 2
    assert len(resolve_prompt("ck+prompteol").templates) == 3
    with pytest.raises(ValueError, match="at least two"):
        resolve_prompt(["cot"])
    with pytest.raises(ValueError, match="twice"):
        resolve_prompt("cot+ck")
    with pytest.raises(ValueError, match="unknown prompt"):
        resolve_prompt("prompteol+nonsense")
