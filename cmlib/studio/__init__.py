"""The capstone studio (chapter 11): a prompt goes in; it finds, draws, describes, translates,
and checks itself.

* :mod:`.understand` — a prompt becomes a scene, or a message naming what the studio knows;
* :mod:`.verdict` — the round trip: does a caption say what the prompt asked?
* :mod:`.questions` — the question-answering role: chapter 08's reasoners answer a question about
  a scene, and their agreement checks the answer.
"""

from .understand import PromptNotUnderstood, Request, known_words, understand, what_it_understands
from .verdict import PARTS, Verdict, compare_scenes, round_trip_verdict

__all__ = [
    "PARTS",
    "PromptNotUnderstood",
    "Request",
    "Verdict",
    "compare_scenes",
    "known_words",
    "round_trip_verdict",
    "understand",
    "what_it_understands",
]
