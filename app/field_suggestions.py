"""The known field an unknown one most likely meant ("lr" -> "learning_rate"), and the known
fields at an error's location in a request body's type."""

import difflib
import types
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

# difflib's ratio from which a misspelling counts as close: "epoch" is 0.91 from "epochs",
# "optimiser" 0.89 from "optimizer"; "random" is only 0.75 from "random_flip" (and from
# "random_crop_padding" less), "seed" 0.5 from "size".
CLOSE_RATIO = 0.8
# The shortest start of a name worth completing: "lr" is too short to be a start of anything.
SHORTEST_START = 3
SEPARATORS = str.maketrans("", "", "_-. ")


def _plain(name: str) -> str:
    return name.lower().translate(SEPARATORS)


def _words(name: str) -> list[str]:
    return [word for word in name.lower().replace("-", "_").split("_") if word]


def _only(candidates: list[str]) -> str | None:
    return candidates[0] if len(candidates) == 1 else None


def suggest_field(unknown: str, known: Collection[str]) -> str | None:
    """The one known field `unknown` most likely meant, or None when none is close or several are.

    Tried in turn: the same name but for case and separators ("batchsize", "learningRate"); the
    initials of a name of several words ("lr", "wd"); a close misspelling ("epoch",
    "optimiser"); the start of a name, or one of its words, started or misspelt ("valid",
    "patience", "patiance")."""
    given = _plain(unknown)
    if not given:
        return None
    names = sorted(known)
    same = _only([name for name in names if _plain(name) == given])
    if same:
        return same
    initials = _only(
        [
            name
            for name in names
            if len(_words(name)) > 1 and "".join(w[0] for w in _words(name)) == given
        ]
    )
    if initials:
        return initials
    plain_names = {_plain(name): name for name in names}
    close = difflib.get_close_matches(given, plain_names, n=2, cutoff=CLOSE_RATIO)
    if close and (len(close) == 1 or _ratio(given, close[0]) > _ratio(given, close[1])):
        return plain_names[close[0]]  # the closest, unless another is as close ("resnet")
    if len(given) < SHORTEST_START:
        return None
    return _only(
        [name for name in names if _plain(name).startswith(given) or _has_word(name, given)]
    )


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _has_word(name: str, given: str) -> bool:
    """A word of `name` starts with `given` ("patience", "valid") or is a misspelling of it."""
    return any(
        word.startswith(given) or _ratio(word, given) >= CLOSE_RATIO for word in _words(name)
    )


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _alternatives(annotation: Any) -> list[Any]:
    """The types a value of `annotation` may have: Annotated unwrapped, unions split."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [choice for arg in get_args(annotation) for choice in _alternatives(arg)]
    return [annotation]


def _inside(annotation: Any, part: str | int) -> Any:
    """The type found one step (a field, an index, a key) inside `annotation`, or None."""
    if _is_model(annotation):
        fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
        return fields[part].annotation if isinstance(part, str) and part in fields else None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def model_fields_at(annotation: Any, location: Sequence[str | int]) -> list[str]:
    """The field names of the model at `location` inside a value of type `annotation` (the
    location as pydantic gives it, without the unknown field itself); none if no model is there."""
    for choice in _alternatives(annotation):
        if not location:
            if _is_model(choice):
                return [field.alias or name for name, field in choice.model_fields.items()]
            continue
        inner = _inside(choice, location[0])
        if inner is not None and (found := model_fields_at(inner, location[1:])):
            return found
    return []
