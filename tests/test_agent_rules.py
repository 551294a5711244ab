"""The agent's rules hold whatever the model writes: a scripted model tries to break each one
(call a tool on a picture the chat does not have, on the old picture after a new one, ramble
in a call until the tokens run out, write call markup into its answer, claim a result after
a failed call, name a picture that does not exist, answer past a tool's result) and the user
still gets a sound answer."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from assistant.agent import Agent, Delta, Note, Step, arithmetic, grounding, view
from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.engine.request import CALL_OPEN, GenerationParams
from tests.scripted import Scripted, call, run
from tools.base import Observation
from tools.registry import build


@pytest.fixture(scope="module")
def registry():
    return build(Settings().tools)


def checks(events) -> list[Note]:
    """The loop's notes that an answer was sent back."""
    return [e for e in events if isinstance(e, Note) and e.kind == "check"]


def streamed(events) -> str:
    """What the user was shown as it was written."""
    return "".join(e.text for e in events if isinstance(e, Delta))


def tools_run(events):
    return [(e.tool, e.arguments) for e in events if isinstance(e, Step) and e.status != "running"]


def test_a_chat_without_pictures_is_offered_no_tool_that_needs_one(registry):
    conv = Conversation()
    conv.add_user("What does the sign say?")
    engine = Scripted([call("ocr", image="#1"), "There is no picture yet: attach one."],
                      guide=False)
    events, final = run(engine, registry, conv, rules="off")  # the model chooses
    assert all(tool != "ocr" for tool, _ in tools_run(events))
    assert engine.prompts[0].system.startswith("Tools: generate_image.") or \
        "- ocr" not in engine.prompts[0].system
    assert CALL_OPEN not in final.text


def test_a_new_picture_is_what_this_means_even_if_the_model_names_the_old_one(registry, red):
    conv = Conversation()
    conv.add_user("What is this?", [red])
    conv.add_assistant("A red rectangle.")
    conv.add_user("And what does this say?", [Image.new("RGB", (200, 80), "white")])
    engine = Scripted([call("ocr", image="#1"), "No text in it."])
    events, _ = run(engine, registry, conv)
    assert tools_run(events)[0] == ("ocr", {"image": "#2"})  # guided to the new picture
    assert engine.prompts[0].turns[-1].images == ["#2"]  # and only it is shown
    # unguided, a call on a picture the message is not about is refused before it runs
    engine = Scripted([call("ocr", image="#1"), call("ocr", image="#2"), "No text."],
                      guide=False)
    events, _ = run(engine, registry, conv.fork())
    steps = [e for e in events if isinstance(e, Step) and e.status != "running"]
    assert steps[0].status == "error" and "#2" in steps[0].observation
    assert steps[1].arguments == {"image": "#2"} and steps[1].status == "done"


def test_it_after_a_drawing_is_the_drawing(registry):
    conv = Conversation()
    conv.add_user("Draw a red circle")
    engine = Scripted([call("generate_image", prompt="a red circle", seed=1), "Here it is: #1.",
                       call("edit_image", image="#1", operation="grayscale"), "Done: #2."])
    _, first = run(engine, registry, conv)
    conv.add_assistant(first.text)
    conv.add_user("Now make it black and white")
    events, final = run(engine, registry, conv)
    assert engine.prompts[2].turns[-1].images == ["#1"]
    assert tools_run(events) == [("edit_image", {"image": "#1", "operation": "grayscale"})]
    assert final.text == "Done: #2."


def test_a_call_that_rambles_is_closed_before_the_tokens_run_out(registry):
    conv = Conversation()
    conv.add_user("Draw the sea")
    rambling = call("generate_image", prompt="a blue circle and " * 60)[:-30]
    engine = Scripted([rambling, "Here it is: #1."])
    events, final = run(engine, registry, conv, max_new_tokens=120)
    assert [tool for tool, _ in tools_run(events)] == ["generate_image"]
    assert not [e for e in events if isinstance(e, Note) and e.kind == "retry"]


@pytest.mark.parametrize("reply,shown", [
    ("Sure! " + call("generate_image", prompt="a red circle"), None),  # a call in the answer
    ("Hello there <tool_c", "Hello there"),  # cut off as the tokens ran out
    ("Hi <observation tool=\"ocr\">fake</observation> there", "Hi  there"),
])
def test_call_markup_never_reaches_the_user(registry, reply, shown):
    conv = Conversation()
    conv.add_user("hello")
    engine = Scripted([reply, "Here is your drawing: #1."], guide=False)
    events, final = run(engine, registry, conv)
    deltas = streamed(events)
    for text in (deltas, final.text):
        assert "<tool_call" not in text and "<observation" not in text, text
    if shown is not None:
        assert final.text == shown.strip()


def test_a_failed_call_is_never_answered_with_a_result(registry, red):
    conv = Conversation()
    conv.add_user("Rotate #1", [red])
    engine = Scripted([call("edit_image", image="#1", operation="rotate"),  # no degrees
                       "Here it is: #1.", "Here it is: #1 rotated."], guide=False)
    events, final = run(engine, registry, conv)
    notes = checks(events)
    assert notes and "failed" in notes[0].text
    assert "Here it is" not in final.text
    assert "could not" in final.text and "rotate needs degrees" in final.text


def test_after_the_check_an_honest_answer_is_kept(registry, red):
    conv = Conversation()
    conv.add_user("Rotate #1", [red])
    engine = Scripted([call("edit_image", image="#1", operation="rotate"), "Done: #1.",
                       "Sorry, I could not rotate it: say by how many degrees."], guide=False)
    _, final = run(engine, registry, conv)
    assert final.text == "Sorry, I could not rotate it: say by how many degrees."


def test_after_a_failed_call_a_vague_apology_gives_way_to_the_tools_reason(registry, red):
    """ "Sorry about that." admits but tells the user nothing: it is sent back, and the
    second vague answer is replaced by what failed and what would work."""
    conv = Conversation()
    conv.add_user("crop the left half", [red])
    engine = Scripted([call("edit_image", image="#1", operation="crop", box=[0, 0, 900, 900]),
                       "Sorry about that.", "Sorry, could you ask another way?"], guide=False)
    events, final = run(engine, registry, conv)
    notes = checks(events)
    assert len(notes) == 2 and "does not say what failed" in notes[0].text
    assert "not inside" in final.text and "Sorry about" not in streamed(events)


def test_a_call_that_made_a_picture_is_never_answered_with_an_apology(registry, red):
    """The edit worked: "sorry" is sent back, and if the model keeps it up the loop shows
    what the tool made."""
    conv = Conversation()
    conv.add_user("make it black and white", [red])
    engine = Scripted([call("edit_image", image="#1", operation="grayscale"),
                       "Sorry about that. Could you tell me what happened?", "Sorry."],
                      guide=False)
    events, final = run(engine, registry, conv)
    notes = checks(events)
    assert notes and "made #2" in notes[0].text
    assert "Sorry" not in streamed(events) and "#2" in final.text
    engine = Scripted([call("edit_image", image="#1", operation="grayscale"),
                       "Sorry, something went wrong.", "Done: #3."], guide=False)
    events, final = run(engine, registry, conv)
    assert final.text == "Done: #3." and len(checks(events)) == 1


def test_an_answer_naming_a_picture_that_does_not_exist_is_not_shown(registry, red):
    conv = Conversation()
    conv.add_user("Crop it", [red])
    engine = Scripted(["Done: #7.", "Done: #7."], guide=False)
    _, final = run(engine, registry, conv)
    assert "#7" not in final.text
    # no tool ran: the loop says what it can do with the picture instead
    assert final.text.startswith("I'm not sure how to answer that about #1.")
    assert "read the text in it" in final.text and "edit it" in final.text


def test_a_number_quoted_from_a_tools_result_is_no_claim(registry):
    conv = Conversation()
    sign = Image.new("RGB", (300, 90), "white")
    from PIL import ImageDraw

    from tools.drawing import font

    ImageDraw.Draw(sign).text((10, 20), "ROOM #12", fill="black", font=font(40))
    conv.add_user("Which room?", [sign])
    engine = Scripted([call("ocr", image="#1"),
                       lambda c: "It says ROOM #12." if "#12" in c.turns[-1].text else "?",
                       "?"])
    _, final = run(engine, registry, conv)
    assert final.text == "It says ROOM #12." or final.text == 'It says "ROOM #12".'


def open_sign() -> Image.Image:
    from PIL import ImageDraw

    from tools.drawing import font

    sign = Image.new("RGB", (400, 110), "white")
    ImageDraw.Draw(sign).text((20, 30), "OPEN 24 HOURS", fill="black", font=font(44))
    return sign


def read_sign(registry, question: str, *answers: str):
    """The events and final answer of a chat about the sign whose model reads it with OCR,
    then answers `answers` in turn."""
    conv = Conversation()
    conv.add_user(question, [open_sign()])
    return run(Scripted([call("ocr", image="#1"), *answers]), registry, conv)


def test_an_answer_that_ignores_the_tools_result_is_asked_again_and_never_shown(registry):
    events, final = read_sign(registry, "Read the text in this image.", "True.",
                              "It says OPEN 24 HOURS.")
    notes = checks(events)
    assert len(notes) == 1 and "does not use what the tool returned" in notes[0].text
    assert final.text == "It says OPEN 24 HOURS."
    assert streamed(events) == final.text  # no "True."


def test_a_number_no_one_gave_is_refused_and_then_the_result_is_shown(registry):
    events, final = read_sign(registry, "How long is it open?", "It is open 1 hours.",
                              "Open for 1 hours.")
    notes = checks(events)
    assert notes and "it says 1," in notes[0].text
    assert final.text == 'It says "OPEN 24 HOURS".'  # the result in a sentence, not the table
    assert "1 hours" not in streamed(events)


def test_an_answer_that_found_nothing_may_say_so(registry):
    conv = Conversation()
    conv.add_user("What does it say?", [Image.new("RGB", (200, 80), "white")])
    engine = Scripted([call("ocr", image="#1"), "I can't find any text in it."])
    events, final = run(engine, registry, conv)
    assert final.text == "I can't find any text in it."
    assert not checks(events)


def test_a_message_naming_a_picture_that_does_not_exist_gets_the_pictures_there_are(
        registry, red):
    conv = Conversation()
    conv.add_user("hi", [red])
    conv.add_assistant("Hello!")
    conv.add_user("Convert #2 to grayscale")
    engine = Scripted([])
    events, final = run(engine, registry, conv)
    assert engine.prompts == []  # no model can do better
    assert "no image #2" in final.text and "#1" in final.text


def test_the_model_reads_a_short_view_of_a_long_chat(registry, red, blue):
    conv = Conversation()
    conv.add_user("first", [red])
    conv.add_assistant("x" * 2000)
    for i in range(4):
        conv.add_user(f"question {i}")
        conv.add_assistant(f"answer {i}")
    conv.add_user("what colour is this?", [blue])
    engine = Scripted(["Blue."])
    run(engine, registry, conv)
    turns = engine.prompts[0].turns
    assert [t.text for t in turns] == ["question 2", "answer 2", "question 3", "answer 3",
                                       "what colour is this?"]
    assert [t.images for t in turns] == [[], [], [], [], ["#2"]]
    long = Conversation()
    long.add_user("a" * 1000)
    long.add_assistant("b" * 1000)
    long.add_user("and?")
    assert all(len(t.text) <= view.LONGEST + 1 for t in view.turns(long))


def test_plain_answers_end_where_a_call_would_begin_and_the_agent_reads_calls():
    params = GenerationParams.from_defaults(Settings(stop=["END"]).generation)
    assert params.stop == ["END", CALL_OPEN]
    engine = Scripted(["Fine."], guide=False)
    conv = Conversation()
    conv.add_user("hi")
    run(engine, build(Settings().tools), conv)
    assert CALL_OPEN not in engine.params[0].stop


@pytest.mark.parametrize("answer,ok", [
    ("It departs at 10:45.", True),  # OCR glued the word to the time: still the time read
    ("Platform 2.", True),
    ("It departs at 11:45.", False),  # a time no one read
    ("Room #7, platform 2.", True),  # a handle is no number
    ("True.", False),  # nothing of the result
])
def test_what_an_answer_after_ocr_may_say(answer, ok):
    from assistant.agent.grounding import ungrounded
    from tools.base import Observation

    lines = [{"text": "DEPARTS10:45", "box": [23, 97, 332, 134]},
             {"text": "PLATFORM2", "box": [23, 162, 283, 197]}]
    text = 'Text in #1 (2 line(s)):\n1. "DEPARTS10:45" at [23, 97, 332, 134]\n' \
           '2. "PLATFORM2" at [23, 162, 283, 197]'
    problem = ungrounded(answer, "when does it leave?", [Observation(text, data={"lines": lines})],
                         made=False)
    assert (problem is None) == ok, problem


@pytest.mark.parametrize("answer,ok", [
    ("The password is maple42.", True),
    ('The password is "MAPLE 42".', True),  # spaces and case aside
    ('The password is "FREEWIFI".', False),  # quoted, read by no one
    ("Use the password guest99.", False),  # a code no one read
    ('You asked for the "wifi password": it is maple42.', True),  # the user's own words
    ("Sign #1 says maple42.", True),  # a handle is no code
    ("The password is PASSWORD.", False),  # only the question's words
    ("The wifi password is on the card.", False),
    ("Yes, there is a wifi password.", True),  # a plain yes may rest on the question
])
def test_what_an_answer_may_quote_after_ocr(answer, ok):
    from assistant.agent.grounding import ungrounded
    from tools.base import Observation

    lines = [{"text": "WIFI PASSWORD", "box": [1, 2, 3, 4]}, {"text": "maple42", "box": [1, 5, 3, 8]}]
    text = 'Text in #1 (2 line(s)):\n1. "WIFI PASSWORD" at [1, 2, 3, 4]\n2. "maple42" at [1, 5, 3, 8]'
    problem = ungrounded(answer, "what's the wifi password", [Observation(text, data={"lines": lines})],
                         made=False)
    assert (problem is None) == ok, problem


def test_auto_gives_a_checkpoint_the_prompt_its_recipe_trained_it_in(tiny_dirs, tmp_path):
    """A model trained by this project's recipe on agent chats records the compact prompt in
    its checkpoint, so that `--model runs/default/model` gets the prompt it learnt; any other
    checkpoint gets the full one."""
    import shutil

    from assistant.agent import for_settings
    from assistant.engine import Engine
    from assistant.models.recipe import Recipe

    assert Recipe(data={"2": ["easy-vqa", "agent:2400"]}).agent_prompt == "compact"
    assert Recipe(data={"2": ["easy-vqa", "my_agents.json"]}).agent_prompt is None
    trained = tmp_path / "trained"
    shutil.copytree(tiny_dirs["llava"], trained)
    config = json.loads((trained / "config.json").read_text())
    (trained / "config.json").write_text(json.dumps({**config, "agent_prompt": "compact"}))
    settings = Settings()
    prompts = {}
    for name, where in (("trained", trained), ("other", tiny_dirs["llava"])):
        engine = Engine.load(settings.engine, str(where))
        agent = for_settings(engine, build(settings.tools), settings.agent, settings.generation)
        prompts[name] = (engine.agent_prompt, agent.prompt)
    assert prompts == {"trained": ("compact", "compact"), "other": (None, "full")}
    forced = for_settings(engine, build(settings.tools), settings.replace(agent_prompt="compact").agent,
                          settings.generation)
    assert forced.prompt == "compact"


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.mark.parametrize("answer", ["Here you go: #2.", "The new picture is #2."])
def test_boxes_drawn_by_the_detector_come_with_what_it_found(registry, answer):
    """The detector made a picture, but it also read one: "Here you go: #2." alone is sent
    back (and "new picture" shares "New image #2" of the observation, not what was read), and
    the loop then says what was found."""
    conv = Conversation()
    conv.add_user("find her face", [astronaut()])
    engine = Scripted([call("detect", image="#1", objects=["face"]), answer, answer],
                      guide=False)
    events, final = run(engine, registry, conv)
    assert "does not use what the tool returned" in checks(events)[0].text
    assert final.text == "I found 1 face, marked in #2."


def test_what_the_detector_found_is_an_answer_without_its_picture(registry):
    """"how many faces?": "There is 1 face." answers it; the boxes' picture is shown with the
    step, so the model is not sent back to name it (and off to call another tool)."""
    conv = Conversation()
    conv.add_user("how many faces are in this photo?", [astronaut()])
    engine = Scripted([call("detect", image="#1", objects=["face"]), "There is 1 face.",
                       call("classify", image="#1")])
    events, final = run(engine, registry, conv)
    assert final.text == "There is 1 face." and not checks(events)
    assert [t for t, _ in tools_run(events)] == ["detect"]


@pytest.mark.parametrize("guide", [True, False])
def test_an_answer_sent_back_is_answered_not_followed_by_another_reading(registry, guide):
    """"find her face": the detector found it, the answer was sent back; a model that would
    then classify the picture (and answer "It looks like a bobsleigh.") is offered no tool,
    and one not guided that calls anyway gets the loop's own answer from the results."""
    conv = Conversation()
    conv.add_user("here's my friend, can you find her face?", [astronaut()])
    engine = Scripted([call("detect", image="#1", objects=["face"]), "True.",
                       call("classify", image="#1"), "It looks like a bobsleigh."],
                      guide=guide)
    events, final = run(engine, registry, conv)
    assert [t for t, _ in tools_run(events)] == ["detect"]
    if guide:
        assert offered_calls(engine.params[2]) == {}
    assert final.text == "I found 1 face, marked in #2."


def test_an_answer_to_what_kind_names_the_kind_found(registry):
    """"what kind of cat is this?" answered "That's a cat." names only the question's noun:
    sent back, and then the loop says the classifier's best label, not its group."""
    from skimage import data

    conv = Conversation()
    conv.add_user("what kind of cat is this?", [Image.fromarray(data.chelsea())])
    engine = Scripted([call("classify", image="#1"), "That's a cat, most likely.",
                       "It is a cat."])
    events, final = run(engine, registry, conv)
    assert "does not name the kind" in checks(events)[0].text
    assert final.text == "It looks like an Egyptian Mau."
    conv.turns[-1].text = "what breed do you think"  # "cat" is no breed, though not asked
    events, final = run(Scripted([call("classify", image="#1"), "That's a cat, most likely.",
                                  "A cat."]), registry, conv)
    assert final.text == "It looks like an Egyptian Mau."
    conv.turns[-1].text = "what kind of animal is this?"  # the group answers it
    _, final = run(Scripted([call("classify", image="#1"), "That's a cat, most likely."]),
                   registry, conv)
    assert final.text == "That's a cat, most likely."


def test_an_answer_to_how_many_gives_a_count(registry):
    conv = Conversation()
    conv.add_user("how many faces are in this photo?", [astronaut()])
    engine = Scripted([call("detect", image="#1", objects=["face"]),
                       "The face found is a red rectangle.", "The face is found."])
    events, final = run(engine, registry, conv)
    assert "does not say how many" in checks(events)[0].text
    assert final.text == "I found 1 face, marked in #2."


def test_a_failed_second_call_does_not_hide_what_the_first_found(registry):
    conv = Conversation()
    conv.add_user("how many people in this one", [astronaut()])
    engine = Scripted([call("detect", image="#1", objects=["person"]),
                       call("caption", image="#9"),
                       "Sorry, I didn't get your way.", "Sorry, could you say what happened?"],
                      guide=False)
    events, final = run(engine, registry, conv)
    assert "nor show #2" in checks(events)[-1].text
    assert final.text.startswith("I found 1 person, marked in #2.")
    assert "could not do that with caption" in final.text


@pytest.mark.parametrize("asked, drawn, passed", [
    ('make a poster that just says "SALE"', "a picture of a sale",
     'a picture of a sale with the text "SALE"'),
    ("draw a sign saying OPEN with a green background", "a green background",
     'a green background with the text "OPEN"'),
])
def test_lettering_the_user_asked_for_reaches_the_drawing(registry, asked, drawn, passed):
    """Text quoted, or in capitals right after "saying", is what the picture must show."""
    conv = Conversation()
    conv.add_user(asked)
    engine = Scripted([call("generate_image", prompt=drawn), "Here it is: #1."], guide=False)
    events, final = run(engine, registry, conv)
    step = next(e for e in events if isinstance(e, Step) and e.status == "done")
    assert step.arguments["prompt"] == passed
    assert final.text == "Here it is: #1." and "#1" in conv.images


def test_capitals_elsewhere_and_lowercase_after_a_cue_are_not_lettering():
    assert grounding.lettering("a card that reads GET WELL SOON.") == ["GET WELL SOON"]
    assert grounding.lettering("draw a cat saying hi LOL") == []


def test_every_failure_is_told_not_only_the_last(registry):
    """The detector's "try classify" is the useful one when a later call fails too."""
    conv = Conversation()
    conv.add_user("can you find any dogs in it", [astronaut()])
    engine = Scripted([call("detect", image="#1", objects=["dog"]),
                       call("classify", image="#7"), "Here you go: #2.", "Here you go: #2."],
                      guide=False)
    events, final = run(engine, registry, conv)
    lines = final.text.splitlines()
    assert len(lines) == 2, final.text
    assert lines[0].startswith("I could not do that with detect:") and "classify" in lines[0]
    assert lines[1].startswith("I could not do that with classify:") and "#7" in lines[1]


@pytest.mark.parametrize("written, right", [
    ("23.75 / 5 = 4.80 each.", "23.75 / 5 = 4.75 each."),
    ("That is 23.75 + 15% = 27.00 with the tip.", "That is 23.75 + 15% = 27.31 with the tip."),
    ("20 - 23.75 = 3.75, so it is short.", "20 - 23.75 = -3.75, so it is short."),
    ("3 x 4 = 11", "3 x 4 = 12"),
    ("4,50 * 2 = 8,00", "4,50 * 2 = 9,00"),
    ("10 / 0 = 3", "10 / 0 = 3"),  # no value: left as written
    ("It is 1920x1080 = 2 megapixels.", "It is 1920x1080 = 2 megapixels."),  # a size
    ("It leaves at 17:20 - 9:00 = 8 hours later.", "It leaves at 17:20 - 9:00 = 8 hours later."),
])
def test_a_sum_in_an_answer_is_computed(written, right):
    assert arithmetic.fix(written) == right


def test_a_wrong_result_is_never_streamed(registry):
    """A direct answer streams in pieces; the wrong figure after "=" is never shown, and what
    was shown is the answer kept."""
    conv = Conversation()
    conv.add_user("The total is 23.75. What does each of us pay if we are 5?")
    events, final = run(Scripted(["Each pays 23.75 / 5 = 4.80 euros."]), registry, conv)
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert final.text == "".join(deltas) == "Each pays 23.75 / 5 = 4.75 euros."
    assert len(deltas) > 3 and not any("4.8" in d for d in deltas)



READ = Observation('Text in #1 (1 line(s), top to bottom):\n1. "OPEN 24 HOURS" at [4, 9, 120, 30] '
                   '(confidence 0.99)', data={"lines": [{"text": "OPEN 24 HOURS"}]})


@pytest.mark.parametrize("answer, sound", [
    ('It says "OPEN 24 HOURS".', True),
    ("It is open 24 hours a day.", True),
    ("It is 24 hours old.", False),  # shares "24 hours", and says what no one read
    ("Open 24 hours, every day of the week.", False),
])
def test_an_answer_about_text_read_adds_nothing_of_its_own(answer, sound):
    problem = grounding.ungrounded(answer, "Read the text in this image.", [READ], False)
    assert (problem is None) == sound, problem


def test_a_failed_edit_is_not_hidden_behind_a_reading(registry):
    """"crop it to her face": the edit fails, the model looks at the picture instead and
    answers with what it shows. The user asked for a picture: the answer must say none was
    made."""
    conv = Conversation()
    conv.add_user("crop it to her face", [astronaut()])
    engine = Scripted([call("edit_image", image="#1", operation="crop", box=[0, 0, 516, 16768]),
                       call("caption", image="#1"), "It shows a woman in a suit.",
                       "It shows a woman in a suit."], guide=False)
    events, final = run(engine, registry, conv)
    assert "no picture was made" in checks(events)[0].text
    assert "could not do that with edit_image" in final.text and "not inside" in final.text
    assert conv.images.keys() == {"#1"}


def offered_calls(params) -> dict[str, dict]:
    """The calls the guide let the model write: each tool's argument schema, by name."""
    schema = params.constraint.schema or {"anyOf": []}
    return {option["properties"]["name"]["enum"][0]: option["properties"]["arguments"]
            for option in schema["anyOf"]}


def test_a_question_is_offered_no_edit_and_no_drawing(registry):
    """"which leaves first?" about two signs: a model that would crop one cannot."""
    conv = Conversation()
    conv.add_user("read this", [open_sign()])
    conv.add_assistant('It says "OPEN 24 HOURS".')
    conv.add_user("so which leaves first, the 42 or the 7?")
    engine = Scripted([call("edit_image", image="#1", operation="crop", box=[0, 0, 9, 9]),
                       *["The 42."] * 3])
    events, final = run(engine, registry, conv)
    calls = offered_calls(engine.params[0])
    assert "edit_image" not in calls and "generate_image" not in calls and "ocr" in calls
    assert all(tool != "edit_image" for tool, _ in tools_run(events))
    assert conv.images.keys() == {"#1"}


def test_an_edit_is_offered_only_of_the_kind_the_message_names(registry):
    conv = Conversation()
    conv.add_user("make it bw", [astronaut()])
    engine = Scripted([call("edit_image", image="#1", operation="grayscale"), "Here it is: #2."])
    run(engine, registry, conv)
    assert offered_calls(engine.params[0])["edit_image"]["properties"]["operation"]["enum"] \
        == ["grayscale"]
    assert "generate_image" not in offered_calls(engine.params[0])  # a change, not a drawing


def test_an_unguided_call_for_work_not_asked_is_refused(registry):
    conv = Conversation()
    conv.add_user("make it bw", [astronaut()])
    engine = Scripted([call("edit_image", image="#1", operation="crop", box=[0, 0, 9, 9]),
                       call("edit_image", image="#1", operation="grayscale"),
                       "Here it is: #2."], guide=False)
    events, final = run(engine, registry, conv)
    steps = [e for e in events if isinstance(e, Step) and e.status == "error"]
    assert "asks for grayscale, not crop" in steps[0].observation
    assert [a["operation"] for _, a in tools_run(events)] == ["crop", "grayscale"]
    assert conv.images.keys() == {"#1", "#2"} and final.text == "Here it is: #2."


def test_a_drawing_asked_for_in_so_many_words_is_offered_no_reading_first(registry):
    """"design a label with PLUM JAM" next to a jar label: a model that would classify the
    label there is cannot; it draws."""
    conv = Conversation()
    conv.add_user("what's written on this jar label?", [open_sign()])
    conv.add_assistant('It says "OPEN 24 HOURS".')
    conv.add_user('could you design a little label for my own jar? a red circle with the '
                  'words "PLUM JAM"')
    engine = Scripted([call("classify", image="#1"), "Here it is: #2."])
    events, final = run(engine, registry, conv)
    assert set(offered_calls(engine.params[0])) == {"generate_image"}
    assert [t for t, _ in tools_run(events)] == ["generate_image"]
    assert final.text == "Here it is: #2."


@pytest.mark.parametrize("guide", [True, False])
def test_a_question_about_text_is_offered_only_the_tool_that_reads_text(registry, guide):
    """"what does the second one say?": a model that would classify the sign cannot (guided,
    or not: the classifier is not among the tools its call may name), and reads it. Nor is
    the caption or VQA offered, which may mention some text: OCR reads it."""
    conv = Conversation()
    conv.add_user("what does the second one say?", [astronaut(), open_sign()])
    engine = Scripted([call("classify", image="#2"), call("ocr", image="#2"),
                       'It says "OPEN 24 HOURS".'], guide=guide)
    events, final = run(engine, registry, conv)
    if guide:
        assert list(offered_calls(engine.params[0])) == ["ocr"]
    else:  # a call to a tool not offered cannot be read, and is retried with the reason
        assert "no tool named 'classify'" in [e for e in events if isinstance(e, Note)][0].text
    run_ = [t for t, _ in tools_run(events)]
    assert run_[-1] == "ocr" and not {"classify", "detect"} & set(run_)
    assert final.text == 'It says "OPEN 24 HOURS".'


def test_the_grey_one_and_the_colour_one_are_told_apart_by_their_pixels(red, blue):
    conv = Conversation()
    conv.add_user("here", [red, blue.convert("L").convert("RGB")])
    assert view.named("shrink the grey one to 200x200", conv) == ["#2"]
    assert view.named("a mirrored version of the colour one", conv) == ["#1"]
    assert view.named("flip the b&w version", conv) == ["#2"]
    conv.add_user("and this", [blue])
    assert view.named("the picture in colour", conv) == ["#1", "#3"]
    assert view.named("the grey sky", conv) == []  # no picture is named


def test_a_picture_is_named_by_what_people_call_it(red, blue):
    conv = Conversation()
    conv.add_user("read this", [red])
    conv.add_user("and this", [blue])
    assert view.named("and what year was on the first label again?", conv) == ["#1"]
    assert view.named("what does the new sign say", conv) == ["#2"]
    assert view.named("what's the first word on it", conv) == []


@pytest.mark.parametrize("message, elliptical", [
    ("and this one?", True), ("ok and this", True), ("same for this pic", True),
    ("and this one? it's from the other stop", True), ("what about the other one?", True),
    ("and this one, what's written?", False), ("and this one? what's written?", False),
    ("thanks", False), ("this is upside down, rotate it", False)])
def test_a_message_that_only_asks_again_is_read_after_the_request_it_repeats(
        registry, red, blue, message, elliptical):
    conv = Conversation()
    conv.add_user("can you read this timetable for me?", [red])
    conv.add_assistant("It says 17:20.")
    conv.add_user(message, [blue])
    read = view.turns(conv)[-1]
    assert read.images == ["#2"]
    if elliptical:
        assert read.text == f"can you read this timetable for me? / {message}"
    else:
        assert read.text == message


def test_an_edit_asked_again_of_a_new_picture_is_offered(registry, red, blue):
    conv = Conversation()
    conv.add_user("make it bw", [red])
    conv.add_assistant("Here it is.")
    conv.add_user("and this one too", [blue])
    engine = Scripted([call("edit_image", image="#2", operation="grayscale"), "Here it is: #3."])
    run(engine, registry, conv)
    assert offered_calls(engine.params[0])["edit_image"]["properties"]["operation"]["enum"] \
        == ["grayscale"]


def test_a_reading_the_chat_already_made_is_read_again_not_run_again(registry):
    """"which hours again?" after the sign was read: the model that calls OCR once more gets
    the earlier reading (no second run, no step), and answers from it."""
    from assistant.agent.trace import results

    conv = Conversation()
    conv.add_user("What does the sign say?", [open_sign()])
    events, final = run(Scripted([call("ocr", image="#1"), "It says OPEN 24 HOURS."]),
                        registry, conv)
    conv.add_assistant(final.text, results(events))
    conv.add_user("how many hours again?")
    engine = Scripted([call("ocr", image="#1"),
                       lambda c: "24." if "OPEN 24 HOURS" in str(c.turns) else "?"])
    events, final = run(engine, registry, conv)
    assert tools_run(events) == []
    assert [e.kind for e in events if isinstance(e, Note)] == ["reused"]
    assert final.text == "24."


def test_a_call_repeated_within_one_answer_runs_once_and_a_new_one_runs(registry):
    conv = Conversation()
    conv.add_user("What does the sign say?", [open_sign(), open_sign()])
    engine = Scripted([call("ocr", image="#1"), call("ocr", image="#1"),
                       call("ocr", image="#2"), 'It says "OPEN 24 HOURS".'])
    events, final = run(engine, registry, conv)
    assert [a["image"] for _, a in tools_run(events)] == ["#1", "#2"]
    assert final.text == 'It says "OPEN 24 HOURS".'


def test_a_tool_that_makes_pictures_runs_each_time_it_is_asked(registry, red):
    from assistant.agent.trace import results

    conv = Conversation()
    conv.add_user("make it bw", [red])
    events, final = run(Scripted([call("edit_image", image="#1", operation="grayscale"),
                                  "Here it is: #2."]), registry, conv)
    conv.add_assistant(final.text, results(events))
    conv.add_user("make it bw again")
    events, final = run(Scripted([call("edit_image", image="#1", operation="grayscale"),
                                  "Here it is: #3."]), registry, conv)
    assert len(tools_run(events)) == 1 and final.text == "Here it is: #3."


def test_boxes_are_drawn_only_once_some_were_found(registry):
    """"put boxes round the faces": no boxes are at hand, so the model is offered no
    draw_boxes (it must find them first); after the detector found some, it is."""
    conv = Conversation()
    conv.add_user("put boxes round the faces", [astronaut()])
    engine = Scripted([call("detect", image="#1", objects=["face"]),
                       lambda c: "Found 1 face, marked in #2."])
    events, final = run(engine, registry, conv)
    assert "edit_image" not in offered_calls(engine.params[0])
    assert offered_calls(engine.params[1])["edit_image"]["properties"]["operation"]["enum"] == \
        ["draw_boxes"]
    unguided = Scripted([call("edit_image", image="#1", operation="draw_boxes",
                              boxes=[{"box": [1, 2, 3, 4], "label": "face"}]),
                         "I could not: no boxes were found yet."], guide=False)
    fresh = Conversation()
    fresh.add_user("make it bw and put boxes round the faces", [astronaut()])
    events, _ = run(unguided, registry, fresh)
    refused = [e for e in events if isinstance(e, Step) and e.status == "error"]
    assert "find them first (detect)" in refused[0].observation and len(fresh.images) == 1


def test_a_reading_the_tool_could_not_do_is_not_forgotten_when_another_works(registry):
    """"find the cars": the detector cannot look for cars, the classifier then names a
    drilling rig; "It looks like a drilling rig." alone is sent back, and the loop says both.
    A slip in the model's own arguments that a later call of the same tool made good needs
    no word."""
    from skimage import data

    conv = Conversation()
    conv.add_user("find the cars in this picture", [Image.fromarray(data.rocket())])
    engine = Scripted([call("detect", image="#1", objects=["car"]),
                       call("classify", image="#1"), "It looks like a drilling rig.",
                       "It looks like a drilling rig."], guide=False)
    events, final = run(engine, registry, conv)
    assert "the detect call failed" in checks(events)[0].text
    assert "It looks like a drilling rig." in final.text
    assert "I could not do that with detect" in final.text and "not 'car'" in final.text
    conv = Conversation()
    conv.add_user("what is this?", [Image.fromarray(data.rocket())])
    engine = Scripted([call("classify", image="#1", top_k=512), call("classify", image="#1"),
                       "It looks like a drilling rig."], guide=False)
    events, final = run(engine, registry, conv)
    assert final.text == "It looks like a drilling rig." and not checks(events)


@pytest.mark.parametrize("written", [
    ':class:edit_image>\n{"name": "ocr", "arguments": {"image": "#1"}}',
    "<tool_name>\n='<tool_name>' +\n<tool_name>\n</tool_name>",
    ": name>", "The answer is <name>work</name>", ":generate_image> :name> [step 1: check",
])
def test_a_call_written_as_text_is_never_shown(registry, red, written):
    conv = Conversation()
    conv.add_user("how are you?", [red])
    engine = Scripted([written, "Fine, thanks!"])
    events, final = run(engine, registry, conv)
    assert "writes a tool call as text" in checks(events)[0].text
    assert final.text == "Fine, thanks!" and "name" not in streamed(events)


def test_a_direct_answer_to_how_many_gives_a_count(registry, red):
    """"how many shapes do you see?" answered "circle" is sent back, and a count is shown."""
    conv = Conversation()
    conv.add_user("how many shapes do you see?", [red])
    engine = Scripted(["circle", "There is one shape."])
    events, final = run(engine, registry, conv)
    assert "does not say how many" in checks(events)[0].text
    assert final.text == "There is one shape."


def test_the_classifier_finds_nothing_but_comes_back_when_the_detector_says_to_try_it(
        registry):
    """"find the cars": the classifier, which only names what a picture shows, is not
    offered; the offline detector fails with "try classify", and then it is."""
    from skimage import data

    conv = Conversation()
    conv.add_user("find the cars in this picture", [Image.fromarray(data.rocket())])
    engine = Scripted([call("detect", image="#1", objects=["car"]),
                       call("classify", image="#1"),
                       "I could not find cars; it looks like a drilling rig."])
    events, final = run(engine, registry, conv)
    assert "classify" not in offered_calls(engine.params[0])
    assert "classify" in offered_calls(engine.params[1])
    assert [t for t, _ in tools_run(events)] == ["detect", "classify"]
    assert final.text == "I could not find cars; it looks like a drilling rig."


@pytest.mark.parametrize("written, shown", [
    ('Sure: {"name": "ocr", "arguments"', "Sure: "),
    ('Sure: { "na', "Sure: "),  # may still become one
    ('Sure: {"nam', "Sure: "),
    ('A set {1, 2} and {"colour": "red"}', 'A set {1, 2} and {"colour": "red"}'),
    ("No braces at all.", "No braces at all."),
    ("Here: <tool_name> x", "Here: "), ("Here: <too", "Here: "), ("Here: \\<tool", "Here: "),
    ("a < b and <div> tags.", "a < b and <div> tags."),
    ("a < b and <div> tags", "a < b and <div> "),  # "tags" may yet be "tags>"
    (": name>", ""), (":generate_image> :name> [step", ""), ("It is 3.10. name>", "It is 3.10. "),
    ("The <name>work</name>", "The "),
])
def test_a_call_being_written_as_text_is_held_back_while_it_streams(written, shown):
    from assistant.agent import protocol

    assert protocol.before_call(written) == shown


def test_a_tools_name_is_no_word_for_the_user(registry):
    """"what can you help me with?" answered "I can help you with: generate_image, ..." is
    sent back; when the model insists, the loop says what it can do in words."""
    conv = Conversation()
    conv.add_user("hi! what can you help me with?")
    parrot = "I can help you with: generate_image, ask about pictures."
    events, final = run(Scripted([parrot, parrot]), registry, conv)
    assert "generate_image, a tool's name" in checks(events)[0].text
    assert "generate_image" not in final.text and "draw a new picture" in final.text
    assert "Attach a picture and I can also" in final.text and "read the text in it" in final.text
    conv.turns[-1].text = "what does generate_image do?"  # the user's word may be repeated
    _, final = run(Scripted(["generate_image draws a picture."]), registry, conv)
    assert final.text == "generate_image draws a picture."


def test_an_answer_that_hands_over_a_picture_none_made_is_sent_back(registry):
    """After a reading, "Here you go: ask the user about the picture, ..." presents a result
    that does not exist."""
    events, final = read_sign(registry, "What does the sign say?",
                              "Here you go: ask the user about the picture.",
                              'It says "OPEN 24 HOURS".')
    assert "hands over a picture" in checks(events)[0].text
    assert final.text == 'It says "OPEN 24 HOURS".'


@pytest.mark.parametrize("guide", [True, False])
def test_a_follow_up_on_a_read_picture_reads_it_again_rather_than_anew(registry, guide):
    """"and when does it close?" after the sign was read, then turned: a model that would
    classify the turned copy cannot (no classifier is offered: the message has no words for
    its work, and it read nothing), nor read the copy: the OCR offered reads only the sign it
    read (the copy was made from it), so the call reuses that reading. Words for another
    tool's work bring it back: "find the faces on it" is offered the detector."""
    from assistant.agent.trace import results

    conv = Conversation()
    conv.add_user("What does the sign say?", [open_sign()])
    events, final = run(Scripted([call("ocr", image="#1"), "It says OPEN 24 HOURS."]),
                        registry, conv)
    conv.add_assistant(final.text, results(events))
    conv.add_user("turn it upside down")
    events, final = run(Scripted([call("edit_image", image="#1", operation="rotate",
                                       degrees=180), "Here it is: #2."]), registry, conv)
    conv.add_assistant(final.text, results(events))
    conv.add_user("and when does it close?")
    answer = lambda c: "It is open 24 hours." if "OPEN 24" in str(c.turns) else "?"  # noqa: E731
    # guided, the classifier's call comes out as the one call on offer; unguided, a reading
    # of the turned copy is refused
    script = [call("classify", image="#2")] if guide else [call("ocr", image="#2"),
                                                            call("ocr", image="#1")]
    engine = Scripted([*script, answer], guide=guide)
    events, final = run(engine, registry, conv)
    if guide:
        offered = offered_calls(engine.params[0])
        assert list(offered) == ["ocr"] and offered["ocr"]["properties"]["image"]["enum"] == \
            ["#1"]
    else:  # the loop refuses the call the guide would not have let through
        refused = [e for e in events if isinstance(e, Step) and e.status == "error"]
        assert "read already (#1)" in refused[0].observation
    assert [a for _, a in tools_run(events)] == ([] if guide else [{"image": "#2"}])
    assert "reused" in [e.kind for e in events if isinstance(e, Note)]
    assert final.text == "It is open 24 hours."
    conv.add_assistant(final.text, results(events))
    conv.add_user("find the faces on it")
    engine = Scripted(["There are none."])
    run(engine, registry, conv)
    assert {"detect", "ocr"} <= set(offered_calls(engine.params[0]))
    assert "classify" not in offered_calls(engine.params[0])


def test_whether_people_are_there_is_the_detectors_to_say(registry):
    """"are there people in this photo?": a model that would answer "yes" from a look must
    call the detector first (the only tool offered, and a call it must write), then answers
    from what it found; later steps are free again."""
    conv = Conversation()
    conv.add_user("are there people in this photo?", [astronaut()])
    engine = Scripted(["yes", lambda c: "I found 1 face." if "found 1 face" in str(c.turns)
                       else "yes"])
    events, final = run(engine, registry, conv)
    assert list(offered_calls(engine.params[0])) == ["detect"]
    assert engine.params[0].constraint.must_call and not engine.params[1].constraint.must_call
    assert [t for t, _ in tools_run(events)] == ["detect"]
    assert final.text == "I found 1 face."


def test_pictures_handed_over_with_nothing_asked_are_answered_with_what_can_be_done(
        registry, red, blue):
    """"here are two pictures": no tool runs on a picture nobody asked about, and the model
    is not asked either (it would classify the first); the loop says which pictures it has
    and what it can do with them."""
    conv = Conversation()
    conv.add_user("here are two pictures", [red, blue])
    events, final = run(Scripted([]), registry, conv)
    assert tools_run(events) == []
    assert final.text.startswith("I have #1 and #2. What would you like to know? I can ")
    assert "read the text in them" in final.text and "edit them" in final.text
    assert Agent(Scripted([]), registry).first_action(conv)[0] == "direct"


def test_pictures_brought_to_ask_again_are_not_just_acknowledged(registry, red, blue):
    """"here too" after "what does this sign say?" asks the same of the new picture."""
    conv = Conversation()
    conv.add_user("what does this sign say?", [red])
    conv.add_assistant("I don't see any text.")
    conv.add_user("here too", [blue])
    engine = Scripted([call("ocr", image="#2"), "I don't see any text here either."])
    events, final = run(engine, registry, conv)
    assert [t for t, _ in tools_run(events)] == ["ocr"]


def test_a_follow_up_on_a_cropped_picture_reads_the_crop(registry):
    """"how many people are left now?" after a crop: the people were counted in the
    original, but the crop shows less of it, so the detector may read the crop anew."""
    from assistant.agent.trace import results

    conv = Conversation()
    conv.add_user("how many people are in this photo?", [astronaut()])
    events, final = run(Scripted([call("detect", image="#1", objects=["person"]),
                                  lambda c: "I found 1 person, marked in #2."]), registry, conv)
    conv.add_assistant(final.text, results(events))
    conv.add_user("crop the left half of the original")
    events, final = run(Scripted([call("edit_image", image="#1", operation="crop",
                                       box=[0, 0, 256, 512]), "Here it is: #3."]),
                        registry, conv)
    conv.add_assistant(final.text, results(events))
    conv.add_user("how many people are left now?")
    engine = Scripted([call("detect", image="#3", objects=["person"]),
                       lambda c: "I found 0 people."])
    run(engine, registry, conv)
    assert "#3" in offered_calls(engine.params[0])["detect"]["properties"]["image"]["enum"]


def test_with_ocr_switched_off_a_text_question_still_gets_no_classifier(registry):
    """No tool reads text: the caption and VQA, which may mention some, stay on offer; the
    classifier and the detector, which read none, still do not."""
    conv = Conversation()
    conv.add_user("what does it say?", [open_sign()])
    engine = Scripted(['It says "OPEN 24 HOURS".'])
    run(engine, registry.only(["caption", "vqa", "classify", "detect"]), conv)
    assert set(offered_calls(engine.params[0])) == {"caption", "vqa"}
