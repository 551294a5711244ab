"""Streamed text, token by token, is the whole answer's decode: for every tiny family's
tokenizer, with characters spread over several byte tokens, and with stop strings cut where
they begin and never shown in part."""

from __future__ import annotations

import random

import pytest

from assistant.engine.detokenize import Detokenizer, hold_back
from tests.engine_calls import FAMILIES

TEXT = "Héllo wörld! The sign says 'Gate 12' 😀 and naïve café prices: 3,50 € — ok?"


@pytest.fixture(scope="module")
def tokenizers(tiny_dirs):
    from transformers import AutoTokenizer

    return {**{f: AutoTokenizer.from_pretrained(tiny_dirs[f]) for f in FAMILIES},
            "metaspace": metaspace_tokenizer()}


def metaspace_tokenizer():
    """A SentencePiece-style tokenizer (Llama's "▁" words): decoding from a word's first token
    drops its space, so text decoded from the middle of an answer must be decoded with the
    tokens before it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    words = (TEXT + " the sign says open gate train leaves at platform tool_call end") * 20
    core.train_from_iterator([words], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "</s>"], initial_alphabet=list(set(TEXT))))
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="</s>")


def streamed(tokenizer, ids, stops=(), end_ids=(), step=1):
    detok = Detokenizer(tokenizer, set(end_ids), list(stops))
    deltas = [detok.add(ids[i:i + step]) for i in range(0, len(ids), step)]
    deltas.append(detok.finish())
    return deltas, detok


@pytest.mark.parametrize("family", [*FAMILIES, "metaspace"])
@pytest.mark.parametrize("step", [1, 3])
def test_streamed_text_is_the_whole_decode(tokenizers, family, step):
    tok = tokenizers[family]
    ids = tok.encode(TEXT, add_special_tokens=False)
    rng = random.Random(0)
    noise = [rng.randrange(tok.vocab_size) for _ in range(200)]  # any ids, byte tokens too
    for sequence in (ids, noise, ids + noise + ids):
        deltas, _ = streamed(tok, sequence, step=step)
        assert "".join(deltas) == tok.decode(sequence, skip_special_tokens=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_no_delta_shows_half_a_character(tokenizers, family):
    tok = tokenizers[family]
    ids = tok.encode(TEXT, add_special_tokens=False)
    deltas, _ = streamed(tok, ids)
    whole = tok.decode(ids, skip_special_tokens=True)
    if "\ufffd" not in whole:  # the tokenizer can spell every character of TEXT
        assert not any("\ufffd" in d for d in deltas)


@pytest.mark.parametrize("family", FAMILIES)
def test_end_tokens_are_left_out(tokenizers, family):
    tok = tokenizers[family]
    ids = tok.encode("the end", add_special_tokens=False)
    end = tok.eos_token_id
    deltas, detok = streamed(tok, ids + [end], end_ids={end})
    assert "".join(deltas) == tok.decode(ids, skip_special_tokens=True)
    assert detok.ids == ids


@pytest.mark.parametrize("family", FAMILIES)
def test_a_stop_string_ends_the_text_and_no_part_of_it_is_shown(tokenizers, family):
    tok = tokenizers[family]
    ids = tok.encode("It says OPEN. <tool_call> more words after", add_special_tokens=False)
    whole = tok.decode(ids, skip_special_tokens=True)
    stop = "<tool_call>"
    if stop not in whole:
        pytest.skip("this tokenizer cannot spell the stop string")
    deltas, detok = streamed(tok, ids, stops=[stop])
    assert "".join(deltas) == whole[:whole.index(stop)]
    assert detok.stopped
    assert not any(d.endswith(("<", "<tool", "<tool_")) for d in deltas[:-1])
    assert detok.add(tok.encode(" and yet more", add_special_tokens=False)) == ""


def test_a_tail_that_may_begin_a_stop_is_held_and_released_at_the_end(tokenizers):
    tok = tokenizers["llava"]
    ids = tok.encode("almost <tool", add_special_tokens=False)
    deltas, detok = streamed(tok, ids, stops=["<tool_call>"])
    whole = tok.decode(ids, skip_special_tokens=True)
    assert "".join(deltas[:-1]) == hold_back(whole, ["<tool_call>"])
    assert "".join(deltas) == whole and not detok.stopped


def test_hold_back_keeps_only_what_cannot_begin_a_stop():
    assert hold_back("see you <to", ["<tool_call>", "User:"]) == "see you "
    assert hold_back("see you Us", ["<tool_call>", "User:"]) == "see you "
    assert hold_back("see you", ["<tool_call>"]) == "see you"
