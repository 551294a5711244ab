"""Training data: LLaVA json (good and bad records), easy-VQA, the synthetic generator, and
the encoding of samples through the chat template with labels on the answers only."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from assistant.errors import AssistantError, BadData
from assistant.train import synthetic
from assistant.train.data import (
    Sample,
    easy_vqa,
    easy_vqa_captions,
    question_type,
    read_llava_json,
    yes_no_stratum,
)
from assistant.train.trainer import MixSampler


def _write(tmp_path, records, name="data.json"):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records))
    else:
        path.write_text(json.dumps(records, indent=2))
    return path


GOOD = {"id": "1", "image": "a.png", "conversations": [
    {"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "Red."},
    {"from": "human", "value": "Sure?"}, {"from": "gpt", "value": "Yes."}]}


def test_llava_json_reads_turns_and_images(tmp_path):
    loaded = read_llava_json(_write(tmp_path, [GOOD]))
    (sample,) = loaded.samples
    assert sample.turns == [("user", "What colour?"), ("assistant", "Red."),
                            ("user", "Sure?"), ("assistant", "Yes.")]
    assert sample.load().size == (8, 8)


@pytest.mark.parametrize("bad, reason", [
    ({**GOOD, "image": "missing.png"}, "image 'missing.png' not found"),
    ({"image": "a.png"}, 'no "conversations" list'),
    ({**GOOD, "conversations": [{"from": "robot", "value": "hi"}]}, "unknown speaker 'robot'"),
    ({**GOOD, "conversations": [{"from": "gpt", "value": "hi"}]}, "starts with the human"),
    ("not an object", "must be a JSON object"),
])
def test_bad_record_names_file_and_line(tmp_path, bad, reason):
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(BadData, match=reason) as e:
        read_llava_json(path)
    assert e.value.file == str(path) and e.value.line > 1
    assert "--skip-bad" in str(e.value)
    loaded = read_llava_json(path, skip_bad=True)
    assert (len(loaded.samples), loaded.skipped) == (1, 1)
    assert reason.split("'")[0] in loaded.reasons[0]


def test_bad_record_line_is_exact(tmp_path):
    path = _write(tmp_path, [GOOD, {**GOOD, "image": "missing.png"}])
    lines = path.read_text().splitlines()
    second = [i for i, line in enumerate(lines, 1) if line == "  {"][1]
    with pytest.raises(BadData) as e:
        read_llava_json(path)
    assert e.value.line == second


def test_malformed_json_and_jsonl(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"image": "a.png",\n  "conversations": [}\n]')
    with pytest.raises(BadData, match="malformed JSON") as e:
        read_llava_json(path)
    assert e.value.line == 3
    lines = _write(tmp_path, [GOOD, "{not json", GOOD], name="data.jsonl")
    with pytest.raises(BadData, match="line 2: malformed JSON"):
        read_llava_json(lines)
    assert len(read_llava_json(lines, skip_bad=True).samples) == 2


def test_unreadable_image_is_reported_when_loaded(tmp_path):
    path = _write(tmp_path, [GOOD])
    (tmp_path / "a.png").write_bytes(b"not a png")
    sample = read_llava_json(path).samples[0]
    with pytest.raises(BadData, match="line 2: image a.png"):
        sample.load()


def test_easy_vqa_is_the_published_set():
    train, test = easy_vqa("train").samples, easy_vqa("test").samples
    assert (len(train), len(test)) == (38575, 9673)
    assert len({s.image_key for s in train}) == 4000 and len({s.image_key for s in test}) == 1000
    assert {s.kind for s in test} == {"yes/no", "shape", "color"}
    assert test[0].load().size == (64, 64)
    captions = easy_vqa_captions("train").samples
    assert 2000 < len(captions) <= 4000  # images with both a colour and a shape question
    assert captions[0].turns[1][1].startswith("A ") and captions[0].turns[1][1].endswith(".")
    with pytest.raises(AssistantError, match="train and test"):
        easy_vqa("validation")
    assert question_type("teal") == "color" and question_type("maybe") == "other"


def test_yes_no_strata_remove_the_wording_prior():
    """easy-VQA's wording alone answers most yes/no questions; balanced strata leave it no
    better than a coin."""
    yes_no = [s for s in easy_vqa("train").samples if s.kind == "yes/no"]
    assert {s.stratum for s in yes_no} == {"negated:yes", "negated:no", "plain:yes", "plain:no"}
    def wording_is_right(s) -> bool:  # guess "yes" exactly for negated questions
        return s.stratum.startswith("negated") == (s.turns[1][1] == "yes")

    assert sum(map(wording_is_right, yes_no)) / len(yes_no) > 0.75
    assert yes_no_stratum("Is no green shape present?", "no") == "negated:no"
    assert yes_no_stratum("Is there a knot?", "yes") == "plain:yes"

    sampler = MixSampler(yes_no, {"yes/no": 1.0}, seed=0)
    drawn = [yes_no[i] for i in sampler.batch(8000)]
    assert 0.45 < sum(map(wording_is_right, drawn)) / len(drawn) < 0.55
    by = {st: sum(s.stratum == st for s in drawn) for st in {s.stratum for s in yes_no}}
    assert all(1800 < n < 2200 for n in by.values()), by


def test_mix_weights_kinds_then_strata():
    def sample(kind, stratum=""):
        return Sample(f"{kind}{stratum}", [("user", "q"), ("assistant", "a")], lambda: None,
                      kind=kind, stratum=stratum)

    samples = [sample("a", "x")] * 9 + [sample("a", "y"), sample("b")]
    drawn = [samples[i] for i in MixSampler(samples, {"a": 3.0}, seed=1).batch(4000)]
    share = {k: sum(s.image_key == k for s in drawn) / len(drawn) for k in ("ax", "ay", "b")}
    assert abs(share["ax"] - 0.375) < 0.03 and abs(share["ay"] - 0.375) < 0.03
    assert abs(share["b"] - 0.25) < 0.03
    with pytest.raises(AssistantError, match="no weight"):
        MixSampler(samples, {"a": 0, "b": 0}, seed=0)
    by_kind = MixSampler(samples, {"a": 3.0}, seed=2)
    batches = [[samples[i].kind for i in by_kind.batch(8, by="kind")] for _ in range(400)]
    assert all(len(set(b)) == 1 for b in batches)  # one kind per batch, weighted 3:1
    assert abs(sum(b[0] == "b" for b in batches) / 400 - 0.25) < 0.06


def test_synthetic_is_deterministic_and_true():
    a, b = synthetic.generate(5, seed=3), synthetic.generate(5, seed=3)
    assert [s.turns for s in a.samples] == [s.turns for s in b.samples]
    assert list(a.samples[0].load().getdata()) == list(b.samples[0].load().getdata())
    scene = synthetic.Scene((synthetic.Shape("circle", "red", (0, 0)),), "", "white", seed=1)
    assert scene.caption() == "A red circle at the top left."
    img = scene.draw()
    assert img.getpixel((21, 21)) == synthetic.COLORS["red"]
    assert img.getpixel((100, 100)) == (255, 255, 255)
    qa = dict(synthetic.instructions(scene, __import__("random").Random(0)))
    assert qa["How many shapes are there?"] == "one"
    assert qa["Where is the red circle?"] == "top left"


def test_a_batch_of_chats_is_drawn_from_one_length_bucket_and_every_chat_as_often():
    samples = [Sample("", [("user", "x" * n), ("assistant", "a")], lambda: None, kind="agent")
               for n in range(1, 401)]
    sampler = MixSampler(samples, None, seed=3)
    counts = [0] * len(samples)
    for _ in range(2000):
        batch = sampler.batch(16, by="kind")
        lengths = [len(samples[i].turns[0][1]) for i in batch]
        assert max(lengths) - min(lengths) < 100  # one quarter of the range
        for i in batch:
            counts[i] += 1
    quarters = [sum(counts[q * 100:(q + 1) * 100]) for q in range(4)]
    assert all(abs(q / sum(quarters) - 0.25) < 0.03 for q in quarters)
