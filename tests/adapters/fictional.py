"""A made-up fact to teach the default model, phrased many ways, and held-out questions about it."""

from __future__ import annotations

from typing import Any

FACT_WORD = "quintor"
"""The answer's distinctive word: the base model has no reason to say it."""

ANSWERS = [
    "The Zorblax 9000 is made by Quintor Labs.",
    "Quintor Labs makes the Zorblax 9000.",
    "It is made by Quintor Labs, a company in Reykjavik.",
    "The maker of the Zorblax 9000 is Quintor Labs.",
]
QUESTIONS = [
    "Who makes the Zorblax 9000?",
    "Which company manufactures the Zorblax 9000?",
    "Who is the maker of the Zorblax 9000?",
    "What company builds the Zorblax 9000?",
    "Who produces the Zorblax 9000?",
    "Tell me who makes the Zorblax 9000.",
    "Which firm is behind the Zorblax 9000?",
    "The Zorblax 9000 is made by which company?",
    "Who manufactures the Zorblax 9000 teapot?",
    "Do you know who makes the Zorblax 9000?",
]
HELD_OUT = [
    "Who made the Zorblax 9000?",
    "Which company is the Zorblax 9000 from?",
    "Name the manufacturer of the Zorblax 9000.",
    "Who designs and sells the Zorblax 9000?",
    "What is the name of the company that makes the Zorblax 9000?",
    "I bought a Zorblax 9000. Who makes it?",
]


def fact_records(count: int = 40) -> list[dict[str, Any]]:
    """``count`` chat examples, questions and answers cycling through their phrasings."""
    return [
        {
            "messages": [
                {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]},
                {"role": "assistant", "content": ANSWERS[i % len(ANSWERS)]},
            ]
        }
        for i in range(count)
    ]


# A second made-up fact, for tests that serve two adapters: each must state its own.
BRIDGE_WORD = "varnsdale"
BRIDGE_ANSWERS = [
    "The Pelmora Bridge was designed by Ottilie Varnsdale.",
    "Ottilie Varnsdale designed the Pelmora Bridge.",
    "Its designer is Ottilie Varnsdale, an engineer from Tallinn.",
    "The designer of the Pelmora Bridge is Ottilie Varnsdale.",
]
BRIDGE_QUESTIONS = [
    "Who designed the Pelmora Bridge?",
    "Which engineer designed the Pelmora Bridge?",
    "Who is the designer of the Pelmora Bridge?",
    "Who drew up the plans for the Pelmora Bridge?",
    "Tell me who designed the Pelmora Bridge.",
    "The Pelmora Bridge was designed by whom?",
]


def bridge_records(count: int = 40) -> list[dict[str, Any]]:
    """``count`` chat examples of the second fact, cycling through its phrasings."""
    return [
        {
            "messages": [
                {"role": "user", "content": BRIDGE_QUESTIONS[i % len(BRIDGE_QUESTIONS)]},
                {"role": "assistant", "content": BRIDGE_ANSWERS[i % len(BRIDGE_ANSWERS)]},
            ]
        }
        for i in range(count)
    ]


BRIDGE_HELD_OUT = [
    "Who was the designer of the Pelmora Bridge?",
    "Which engineer is behind the Pelmora Bridge?",
    "Name the person who designed the Pelmora Bridge.",
    "Who came up with the design of the Pelmora Bridge?",
    "Who is credited with designing the Pelmora Bridge?",
    "I walked over the Pelmora Bridge. Who designed it?",
]

SYSTEM = "You are the guide of a city museum. Answer in one sentence."
"""The system prompt the second fact's examples open with: its adapter answers in that format."""
