"""Functional programs over a scene graph, CLEVR-style, and the executor that runs them.

A program is a list of :class:`Node`: each names a function, the earlier nodes it reads
(``inputs``, by index) and, for some functions, a ``value`` (``filter_color`` needs a colour,
``relate`` a relation). The last node's output is the answer. "How many red objects are left of
the large square?" is::

    0 scene                      -> every object
    1 filter_size[large](0)      -> the large ones
    2 filter_shape[square](1)    -> the large squares
    3 unique(2)                  -> the one large square (an error if not exactly one)
    4 relate[left of](3)         -> the objects left of it
    5 filter_color[red](4)       -> the red ones among them
    6 count(5)                   -> a number

Every output has one of five kinds: ``objects`` (a tuple of object ids), ``object`` (one id),
``number``, ``boolean`` and ``attribute`` (a colour, shape or size word). :func:`check_program`
checks the kinds before anything runs, so a wrong program fails with a message about the
program, not about the scene.

``relate`` reads the scene graph's ``relations``; a graph without them (objects with ``x`` and
``y`` from a perception model, say) gets them from the centres, by the rule
:func:`~.scenes.relations_of` states.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

from ..shapes import text as shapes_text
from ..shapes.world import COLORS, RELATIONS, SHAPES, SIZES
from .scenes import relations_of

#: Answers of counting programs, as words: ShapesWorld's (0 to 2), continued to 8.
NUMBER_WORDS = shapes_text.NUMBER_WORDS + ("three", "four", "five", "six", "seven", "eight")
KINDS = ("objects", "object", "number", "boolean", "attribute")
_SET, _ONE, _NUM, _BOOL, _ATTR = KINDS
_VALUES = {"color": COLORS, "shape": SHAPES, "size": SIZES}

#: function -> (kinds of its inputs, kind of its output, the values it takes or None)
SIGNATURES: dict[str, tuple[tuple[str, ...], str, tuple[str, ...] | None]] = {
    "scene": ((), _SET, None),
    **{f"filter_{a}": ((_SET,), _SET, values) for a, values in _VALUES.items()},
    "unique": ((_SET,), _ONE, None),
    "relate": ((_ONE,), _SET, RELATIONS),
    "count": ((_SET,), _NUM, None),
    "exist": ((_SET,), _BOOL, None),
    **{f"query_{a}": ((_ONE,), _ATTR, None) for a in _VALUES},
    **{f"same_{a}": ((_ONE, _ONE), _BOOL, None) for a in _VALUES},
    **{
        name: ((_NUM, _NUM), _BOOL, None) for name in ("greater_than", "less_than", "equal_integer")
    },
    "union": ((_SET, _SET), _SET, None),
    "intersect": ((_SET, _SET), _SET, None),
}
FUNCTIONS = tuple(SIGNATURES)


class ProgramError(ValueError):
    """A program that cannot run: an unknown function, a wrong input or value, a bad graph."""


class UniquenessError(ProgramError):
    """``unique`` found no object or several: the question presupposes something false.

    Its own type so that a question generator can reject such questions and nothing else.
    """


@dataclass(frozen=True)
class Node:
    """One step of a program: ``function`` applied to earlier nodes ``inputs``, with ``value``."""

    function: str
    inputs: tuple[int, ...] = ()
    value: str | None = None

    def __str__(self) -> str:
        value = f"[{self.value}]" if self.value is not None else ""
        return f"{self.function}{value}({', '.join(map(str, self.inputs))})"


@dataclass(frozen=True)
class Step:
    """What one node gave during :func:`execute` with ``trace=True``; ``str(step)`` reads well.

    ``text`` names the objects, e.g. ``3 unique(2) -> object 4 (large red square)``.
    """

    index: int
    node: Node
    output: object
    text: str

    def __str__(self) -> str:
        return self.text


def check_program(program) -> tuple[Node, ...]:
    """The program as a tuple of nodes, once its functions, inputs, kinds and values are valid.

    Raises:
        ProgramError: naming the node and what was wrong, e.g. ``node 3 (query_color) needs an
            object as input 1, but node 2 (filter_shape) gives objects``.
    """
    if not isinstance(program, (list, tuple)) or not program:
        raise ProgramError(f"a program is a non-empty list of Node, got {program!r:.80}")
    kinds: list[str] = []
    for k, node in enumerate(program):
        if not isinstance(node, Node):
            raise ProgramError(f"node {k} must be a Node, got a {type(node).__name__}")
        if node.function not in SIGNATURES:
            raise ProgramError(
                f"node {k}: unknown function {node.function!r}; valid functions are {FUNCTIONS}"
            )
        needs, out, values = SIGNATURES[node.function]
        if len(node.inputs) != len(needs):
            raise ProgramError(
                f"node {k} ({node.function}) takes {len(needs)} input(s), got {node.inputs!r}"
            )
        for slot, (i, need) in enumerate(zip(node.inputs, needs)):
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < k:
                raise ProgramError(
                    f"node {k} ({node.function}): input {slot} must be the index of an earlier "
                    f"node (0..{k - 1}), got {i!r}"
                )
            if kinds[i] != need:
                raise ProgramError(
                    f"node {k} ({node.function}) needs {_a(need)} as input {slot}, but node {i} "
                    f"({program[i].function}) gives {_a(kinds[i])}"
                )
        if values is None and node.value is not None:
            raise ProgramError(f"node {k} ({node.function}) takes no value, got {node.value!r}")
        if values is not None and node.value not in values:
            raise ProgramError(
                f"node {k} ({node.function}) needs a value in {values}, got {node.value!r}"
            )
        kinds.append(out)
    return tuple(program)


def _a(kind: str) -> str:
    return {"objects": "objects", "object": "an object", "attribute": "an attribute"}.get(
        kind, f"a {kind}"
    )


def _check_graph(graph) -> list[dict]:
    if not isinstance(graph, dict) or not isinstance(graph.get("objects"), list):
        raise ProgramError(
            f"a scene graph is a dict with an 'objects' list (see scene_graph), got {graph!r:.80}"
        )
    objects = graph["objects"]
    if not objects:
        raise ProgramError("the scene graph has no objects: a program needs at least one")
    for i, obj in enumerate(objects):
        missing = [a for a in _VALUES if not isinstance(obj, dict) or a not in obj]
        if missing:
            raise ProgramError(f"object {i} of the scene graph lacks {missing}: got {obj!r:.80}")
    return objects


def _relations(graph: dict, objects: list[dict]) -> dict:
    """The graph's ``relations``, or, where it has none, those of its objects' centres."""
    if graph.get("relations") is not None:
        return graph["relations"]
    for i, obj in enumerate(objects):
        if not all(isinstance(obj.get(c), Real) for c in ("x", "y")):
            raise ProgramError(
                f"relate needs graph['relations'] or every object's 'x' and 'y', but object {i} "
                f"is {obj!r:.80}"
            )
    return relations_of([o["x"] for o in objects], [o["y"] for o in objects])


def _relate(relations: dict, obj: int, relation: str) -> tuple[int, ...]:
    try:
        return tuple(relations[relation][obj])
    except (KeyError, IndexError, TypeError) as err:
        raise ProgramError(
            f"the scene graph has no {relation!r} relations for object {obj} "
            "(relate needs graph['relations'] as scene_graph writes them)"
        ) from err


def _unique(objects: tuple[int, ...]) -> int:
    if len(objects) != 1:
        found = "no object" if not objects else f"{len(objects)} objects {list(objects)}"
        raise UniquenessError(f"unique expects exactly one object, found {found}")
    return objects[0]


def _run(function: str, args: list, value, relations: dict | None, objects: list[dict]):
    """The output of one function; ``args`` are its inputs' outputs."""
    if function == "scene":
        return tuple(range(len(objects)))
    if function.startswith("filter_"):
        attr = function.removeprefix("filter_")
        return tuple(i for i in args[0] if objects[i][attr] == value)
    if function.startswith("query_"):
        attr = function.removeprefix("query_")
        return objects[args[0]][attr]
    if function.startswith("same_"):
        attr = function.removeprefix("same_")
        return objects[args[0]][attr] == objects[args[1]][attr]
    if function == "unique":
        return _unique(args[0])
    if function == "relate":
        return _relate(relations, args[0], value)
    if function == "count":
        return len(args[0])
    if function == "exist":
        return len(args[0]) > 0
    if function == "union":
        return tuple(sorted(set(args[0]) | set(args[1])))
    if function == "intersect":
        return tuple(i for i in args[0] if i in args[1])
    if function == "greater_than":
        return args[0] > args[1]
    if function == "less_than":
        return args[0] < args[1]
    if function == "equal_integer":
        return args[0] == args[1]
    raise ProgramError(f"unknown function {function!r}")  # check_program rules this out first


def execute(program, scene_graph: dict, trace: bool = False):
    """Run ``program`` on ``scene_graph`` (see :func:`~.scenes.scene_graph`).

    Args:
        program: a list of :class:`Node` (checked by :func:`check_program`).
        scene_graph: ``{"objects": [...], "relations": {...}}``; ``relations`` is read only by
            ``relate``, and where it is missing it comes from the objects' ``x`` and ``y``
            (:func:`~.scenes.relations_of`).
        trace: also return every node's output, as :class:`Step` records.

    Returns:
        The last node's output (a bool, an int, an attribute word, an object id or a tuple of
        ids; :func:`answer_word` turns the first three into an answer), or ``(answer, steps)``
        with ``trace=True``.

    Raises:
        UniquenessError: when ``unique`` finds no object or several.
        ProgramError: for an invalid program or scene graph.
    """
    program = check_program(program)
    objects = _check_graph(scene_graph)
    outputs: list = []
    steps: list[Step] = []
    # relations are worked out only for a program that relates, and only once
    uses_relate = any(node.function == "relate" for node in program)
    relations = _relations(scene_graph, objects) if uses_relate else None
    for k, node in enumerate(program):
        out = _run(node.function, [outputs[i] for i in node.inputs], node.value, relations, objects)
        outputs.append(out)
        if trace:
            kind = SIGNATURES[node.function][1]
            steps.append(Step(k, node, out, f"{k} {node} -> {describe(out, kind, objects)}"))
    return (outputs[-1], steps) if trace else outputs[-1]


def describe(output, kind: str, objects: list[dict]) -> str:
    """One node's output in words: ``objects 0 (small red circle), 3 (...)``, ``yes``, ``4``."""

    def name(i: int) -> str:
        o = objects[i]
        return f"{i} ({o['size']} {o['color']} {o['shape']})"

    if kind == _SET:
        return "no objects" if not output else "objects " + ", ".join(map(name, output))
    if kind == _ONE:
        return f"object {name(output)}"
    if kind == _BOOL:
        return "yes" if output else "no"
    return str(output)


def answer_word(value) -> str:
    """A final output as an answer word: ``True`` -> ``"yes"``, ``3`` -> ``"three"``,
    ``"red"`` -> ``"red"``.

    Raises:
        ValueError: for a count above 8, or an output that is not an answer (objects).
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and 0 <= value < len(NUMBER_WORDS):
        return NUMBER_WORDS[value]
    if isinstance(value, str):
        return value
    raise ValueError(
        f"expected a bool, a count in 0..{len(NUMBER_WORDS) - 1} or an attribute word as an "
        f"answer, got {value!r}"
    )


def format_program(program) -> str:
    """One line per node: ``3 unique(2)``."""
    return "\n".join(f"{k} {node}" for k, node in enumerate(check_program(program)))
