"""Cross-modal reasoning data (article §4.2): scenes of several shapes and CLEVR-style
questions, each a small functional program executed on the scene graph.

Nothing is downloaded: item ``i`` of a split is a pure function of the seed, the split and
``i``, like ShapesWorld, whose shapes, colours, sizes and renderer it reuses.

The package, from the world outwards (each module imports only those above it):

* :mod:`~cmlib.data.reasoning.scenes` — scenes of 2–8 objects placed without overlap, with
  centres at least ``GAP`` apart along both axes, the CoGenT conditions, the scene graph and
  its relations (:func:`relations_of`);
* :mod:`~cmlib.data.reasoning.programs` — programs (lists of :class:`Node`), the executor
  (:func:`execute`, with a readable trace) and its errors;
* :mod:`~cmlib.data.reasoning.planting` — descriptions of objects, and how a question's answer
  is planted in a scene;
* :mod:`~cmlib.data.reasoning.families` — the eleven question families: templates, programs,
  and :func:`ask`, a question of a family with words a reader chose;
* :mod:`~cmlib.data.reasoning.questions` — generation balanced within each family, the answer
  and question vocabularies, and what the answers and the number of objects give away
  (:func:`majority_rates`, :func:`object_count_rates`);
* :mod:`~cmlib.data.reasoning.dataset` — :class:`ReasoningDataset`, the torch ``Dataset``.

Example (item 3 of the default training set, as it prints)::

    >>> data = ReasoningDataset("train", size=1000)
    >>> item = data.item(3)
    >>> item.question, item.answer
    ('What colour is the square right of the large circle?', 'blue')
    >>> print(format_program(item.program))
    0 scene()
    1 filter_size[large](0)
    2 filter_shape[circle](1)
    3 unique(2)
    4 relate[right of](3)
    5 filter_shape[square](4)
    6 unique(5)
    7 query_color(6)
    >>> answer, steps = execute(item.program, item.graph, trace=True)
    >>> print(steps[4])
    4 relate[right of](3) -> objects 0 (large red triangle), 1 (large blue square)
"""

from .dataset import SPLITS, ReasoningDataset, ReasoningItem, encode_items
from .families import FAMILIES, TEMPLATES, ask, family_answers
from .programs import (
    FUNCTIONS,
    NUMBER_WORDS,
    Node,
    ProgramError,
    Step,
    UniquenessError,
    answer_word,
    check_program,
    execute,
    format_program,
)
from .questions import (
    ANSWERS,
    MAX_QUESTION_TOKENS,
    Question,
    answer_balance,
    answer_prior,
    encode_question,
    generate,
    majority_rates,
    object_count_rates,
    question_vocab,
)
from .scenes import (
    CONDITIONS,
    allowed_pairs,
    format_scene_graph,
    place_objects,
    relations_of,
    sample_scene,
    scene_graph,
    scene_paint,
)

__all__ = [
    "ANSWERS",
    "CONDITIONS",
    "FAMILIES",
    "FUNCTIONS",
    "MAX_QUESTION_TOKENS",
    "NUMBER_WORDS",
    "SPLITS",
    "TEMPLATES",
    "Node",
    "ProgramError",
    "Question",
    "ReasoningDataset",
    "ReasoningItem",
    "Step",
    "UniquenessError",
    "allowed_pairs",
    "answer_balance",
    "answer_prior",
    "answer_word",
    "ask",
    "check_program",
    "encode_items",
    "encode_question",
    "execute",
    "family_answers",
    "format_program",
    "format_scene_graph",
    "generate",
    "majority_rates",
    "object_count_rates",
    "place_objects",
    "question_vocab",
    "relations_of",
    "sample_scene",
    "scene_graph",
    "scene_paint",
]
