"""JSON in and out for the PyTorch oracle scripts (tests/torch.ts): NaN, Infinity and -Infinity
travel as the strings "NaN", "Infinity", "-Infinity"."""
import json
import math
import sys

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _decode(value):
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _encode(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def read_request():
    """The request on stdin, specials decoded."""
    return _decode(json.load(sys.stdin))


def write_answer(answer):
    """Prints the answer as JSON, specials encoded; tensors must be turned to lists first."""
    json.dump(_encode(answer), sys.stdout)
