"""What the assistant answers without any tool: small talk and general questions.

`small_talk(rng)` and `general(rng)` each give one (message, answer) pair. Answers are short
and true; arithmetic and unit conversions are computed, so there are as many as are drawn.
The point of training on them is that a chat message that asks for no picture work is
answered in words, never sent to a tool.
"""

from __future__ import annotations

import random

SMALL_TALK: list[tuple[list[str], list[str]]] = [
    (["hi", "hello", "hey", "hi there", "hello!", "hey hey", "good morning", "good evening",
      "yo", "hiya", "greetings", "howdy", "morning!", "hello assistant"],
     ["Hello! Send me a picture and ask about it, or ask me to draw something.",
      "Hi! What can I do for you?", "Hello! How can I help?"]),
    (["thanks", "thank you", "thanks a lot", "thx", "cheers", "thank you so much", "great, thanks",
      "perfect, thank you", "ty", "many thanks", "awesome thanks", "thanks!! that helps"],
     ["You're welcome!", "Glad I could help.", "Any time!"]),
    (["bye", "goodbye", "see you", "that's all", "ok bye", "good night", "that is all for now",
      "gotta go", "see ya later", "i'm done"],
     ["Goodbye!", "Bye! Come back any time.", "See you!"]),
    (["how are you", "how are you doing", "how's it going", "are you ok", "what's up",
      "how do you feel today"],
     ["I'm doing well, thanks! What can I do for you?", "All good here. How can I help?"]),
    (["who are you", "what are you", "are you a robot", "what's your name", "are you human",
      "who made you"],
     ["I'm an assistant that runs on this computer: I look at pictures, read text in them, "
      "find faces, edit and draw images, and answer questions.",
      "I'm a local assistant for pictures and questions. I run on this machine."]),
    (["what can you do", "help", "what are your features", "how do you work",
      "what can i ask you", "what tools do you have", "how does this work"],
     ["Send me a picture and I can describe it, read its text, tell what it shows, find faces "
      "or people, crop, rotate, flip, blur or resize it, or draw a new picture from a "
      "description. I can also answer general questions."]),
    (["ok", "okay", "cool", "nice", "great", "awesome", "wow", "lol", "interesting", "i see",
      "got it", "alright", "hmm", "good job", "well done", "amazing"],
     ["Glad you like it! Anything else?", "Anything else I can do?", "Great! What next?"]),
    (["you're wrong", "that's not right", "no that's wrong", "that is incorrect", "wrong"],
     ["Sorry about that. Could you tell me what is wrong, or try asking another way?"]),
    (["can you see images", "can you look at pictures", "do you understand photos"],
     ["Yes: attach a picture and ask me about it."]),
    (["tell me a joke", "say something funny", "make me laugh", "know any jokes"],
     ["Why did the picture go to jail? It was framed.",
      "I told my computer a joke about pixels, but it didn't get the picture."]),
]

GENERAL: list[tuple[list[str], str]] = [
    (["how do i convert celsius to fahrenheit", "celsius to fahrenheit formula",
      "how to turn celsius into fahrenheit"],
     "Multiply the Celsius value by 9/5 and add 32: F = C x 9/5 + 32. For example 20 °C is "
     "68 °F."),
    (["how do i convert fahrenheit to celsius", "fahrenheit to celsius?"],
     "Subtract 32 and multiply by 5/9: C = (F - 32) x 5/9. For example 68 °F is 20 °C."),
    (["write a short poem about the sea", "a poem about the ocean please",
      "give me a few lines of poetry about waves"],
     "The sea rolls in with silver light,\nit hums all day and sighs all night;\nit keeps "
     "the secrets of the shore\nand comes back asking, always, more."),
    (["write a haiku about autumn", "autumn haiku please", "a haiku on fall leaves"],
     "Red leaves drift and fall,\nthe cold wind counts them softly,\nbare trees wait for "
     "snow."),
    (["write a short poem about a cat", "a little poem about my cat"],
     "A cat upon the windowsill\nsits soft and round and very still;\nshe dreams of birds "
     "and sunny naps,\nthen wakes to rule the laps."),
    (["what is the capital of france", "capital of france?", "france's capital"],
     "Paris is the capital of France."),
    (["what is the capital of japan", "capital of japan?"], "Tokyo is the capital of Japan."),
    (["what is the capital of italy", "capital city of italy"], "Rome is the capital of Italy."),
    (["how many days are in a year", "days in a year?"],
     "A year has 365 days, and 366 in a leap year."),
    (["how many minutes are in an hour", "minutes in an hour"], "An hour has 60 minutes."),
    (["what is photosynthesis", "explain photosynthesis simply"],
     "Photosynthesis is how plants make their food: they use sunlight, water and carbon "
     "dioxide to make sugar, and give off oxygen."),
    (["why is the sky blue", "what makes the sky blue"],
     "Sunlight is scattered by the air, and blue light scatters much more than red, so the "
     "sky looks blue."),
    (["what is a pixel", "explain what a pixel is"],
     "A pixel is one dot of a digital picture; a picture is a grid of pixels, each with "
     "its own colour."),
    (["what is machine learning", "explain machine learning in one sentence"],
     "Machine learning is teaching computers to do a task by learning patterns from "
     "examples instead of following hand-written rules."),
    (["give me a tip for better photos", "how do i take better pictures",
      "any photography tips"],
     "Keep the light behind you, hold the camera steady, and put the subject a little off "
     "centre."),
    (["what should i cook tonight", "suggest a quick dinner", "dinner idea?"],
     "How about pasta with tomatoes, garlic and olive oil: ready in 15 minutes."),
    (["how do i boil an egg", "how long to boil an egg"],
     "Put the egg in boiling water: 6 minutes for a soft yolk, 9 to 10 for hard-boiled."),
    (["what is the largest planet", "biggest planet in the solar system"],
     "Jupiter is the largest planet in the solar system."),
    (["what is the boiling point of water", "at what temperature does water boil"],
     "Water boils at 100 °C (212 °F) at sea level."),
    (["translate hello into spanish", "how do you say hello in spanish"],
     "Hello in Spanish is \"hola\"."),
    (["translate thank you into french", "how do you say thank you in french"],
     "Thank you in French is \"merci\"."),
    (["what is the opposite of hot", "opposite of hot?"], "The opposite of hot is cold."),
    (["spell necessary", "how do you spell necessary"], "N-E-C-E-S-S-A-R-Y: necessary."),
    (["give me a synonym for happy", "another word for happy"],
     "Glad, cheerful or joyful."),
    (["what time zone is london in", "london time zone"],
     "London uses Greenwich Mean Time (GMT), and British Summer Time (GMT+1) in summer."),
    (["recommend a book", "what book should i read"],
     "Try \"The Little Prince\" by Antoine de Saint-Exupery: short, kind and wise."),
    (["what's the difference between jpg and png", "jpeg vs png?"],
     "JPEG compresses photos well but loses a little detail; PNG keeps every pixel exactly "
     "and supports transparency, which suits drawings and screenshots."),
    (["how many legs does a spider have", "spider legs count"], "A spider has eight legs."),
    (["what colour do you get mixing blue and yellow", "blue plus yellow makes what colour"],
     "Blue and yellow make green."),
    (["what colour do you get mixing red and white", "red and white mixed give what colour"],
     "Red and white make pink."),
    (["tell me a fun fact", "give me a fun fact"],
     "Octopuses have three hearts and blue blood."),
    (["how far is the moon", "distance to the moon"],
     "The Moon is about 384,000 km (239,000 miles) from Earth."),
    (["write a sentence using the word bright", "use bright in a sentence"],
     "The bright morning sun woke everyone early."),
    (["what is an adjective", "define adjective"],
     "An adjective is a word that describes a noun, like \"red\" in \"a red car\"."),
    (["summarize the plot of cinderella", "cinderella story in one line"],
     "A kind young woman, mistreated by her stepfamily, goes to a royal ball with a fairy "
     "godmother's help, loses a glass slipper, and the prince finds her with it."),
]

UNITS = [("km", "miles", 0.621371, "Multiply by 0.621"), ("miles", "km", 1.609344,
         "Multiply by 1.609"), ("kg", "pounds", 2.204623, "Multiply by 2.205"),
         ("inches", "cm", 2.54, "Multiply by 2.54"), ("meters", "feet", 3.28084,
         "Multiply by 3.281")]
OPS = [("+", "plus", lambda a, b: a + b), ("-", "minus", lambda a, b: a - b),
       ("*", "times", lambda a, b: a * b), ("x", "times", lambda a, b: a * b)]


# Reactions people put before thanks or a goodbye ("nice, thank you!", "ok great, bye").
REACTIONS = ["ok", "okay", "nice", "great", "cool", "perfect", "awesome", "wow", "oh nice",
             "ah ok", "good", "lovely", "ok great", "sweet"]


def small_talk(rng: random.Random) -> tuple[str, str]:
    group = rng.randrange(len(SMALL_TALK))
    messages, answers = SMALL_TALK[group]
    message = rng.choice(messages)
    if group in (1, 2) and rng.random() < 0.4:  # thanks, goodbye
        message = _after_reaction(message, rng)
    return message, rng.choice(answers)


def _after_reaction(message: str, rng: random.Random) -> str:
    """`message` after what people put before thanks or a goodbye ("nice, thank you!")."""
    return f"{rng.choice(REACTIONS)}{rng.choice([', ', ' ', '! '])}{message}"


def thanks(rng: random.Random) -> tuple[str, str]:
    """A thank-you or goodbye, often after a reaction ("perfect thx", "ok great, bye"): what
    people say once a tool has done what they asked."""
    messages, answers = SMALL_TALK[rng.choice([1, 1, 2])]
    message = rng.choice(messages)
    if rng.random() < 0.6:
        message = _after_reaction(message, rng)
    return message, rng.choice(answers)


def general(rng: random.Random) -> tuple[str, str]:
    """A general question, hand-written or computed (arithmetic, conversions)."""
    roll = rng.random()
    if roll < 0.2:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        sign, word, op = rng.choice(OPS)
        form = rng.choice(["what is {a} {s} {b}", "{a} {s} {b} = ?", "what's {a} {w} {b}",
                           "calculate {a} {s} {b}", "how much is {a} {w} {b}"])
        return form.format(a=a, b=b, s=sign, w=word), f"{a} {sign} {b} = {op(a, b)}."
    if roll < 0.3:
        source, target, factor, how = rng.choice(UNITS)
        n = rng.choice([1, 2, 5, 10, 12, 20, 42, 100])
        form = rng.choice(["convert {n} {s} to {t}", "how many {t} is {n} {s}",
                           "{n} {s} in {t}?"])
        return (form.format(n=n, s=source, t=target),
                f"{n} {source} is about {n * factor:.1f} {target} ({how.lower()}).")
    if roll < 0.4:
        c = rng.choice([-10, 0, 10, 15, 20, 25, 30, 37, 40, 100])
        form = rng.choice(["what is {c} celsius in fahrenheit", "convert {c}c to f",
                           "{c} degrees celsius in fahrenheit?"])
        return form.format(c=c), f"{c} °C is {c * 9 / 5 + 32:g} °F (C x 9/5 + 32)."
    messages, answer = rng.choice(GENERAL)
    return rng.choice(messages), answer
