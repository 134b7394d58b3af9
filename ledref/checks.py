"""Checks shared by the public functions and the file readers.

An argument of the wrong type or out of range, a file that is not what its name says, a name that
would lead out of its directory: each becomes the named error the caller asks for (a class of
ledref.errors), naming the argument, field or file and saying what was expected.
"""

import json
import math
import os
from typing import TypeGuard

import numpy as np

from .errors import LedrefError


def short(value, limit=80):
    """repr(value) on one line, cut to `limit` characters (arrays, and sequences of them, by their shape):
    messages stay one readable line whatever was passed."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"<{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}>"
    if isinstance(value, (tuple, list)) and any(hasattr(v, "shape") for v in value):
        return f"<{type(value).__name__} of {len(value)} arrays>"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_int(value: object) -> TypeGuard[int]:
    """An int or a NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_bool(value):
    """A bool or a NumPy bool."""
    return isinstance(value, (bool, np.bool_))


def check_int(name, value, error, minimum=None, maximum=None):
    """`value` as an int within [minimum, maximum] (either end may be None), else error naming `name`."""
    if not is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(f"{name}={short(value)}; expected {int_range(minimum, maximum)}")
    return int(value)


def int_range(minimum=None, maximum=None):
    """'an int >= 1', 'an int >= 0 and <= 9', ... for messages."""
    if minimum is not None and maximum is not None:
        return f"an int >= {minimum} and <= {maximum}"
    if minimum is not None:
        return f"an int >= {minimum}"
    if maximum is not None:
        return f"an int <= {maximum}"
    return "an int"


def check_real(name, value, error, minimum=None):
    """`value` as a finite float (an int or float, not a bool), >= minimum when given."""
    if (is_bool(value) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(float(value)) or (minimum is not None and value < minimum)):
        expected = "a finite number" + (f" >= {minimum}" if minimum is not None else "")
        raise error(f"{name}={short(value)}; expected {expected}")
    return float(value)


def check_bool(name, value, error):
    """`value` as a bool (Python's or NumPy's), else error naming `name`."""
    if not is_bool(value):
        raise error(f"{name}={short(value)}; expected True or False")
    return bool(value)


def check_choice(name, value, choices, error):
    """`value` is one of `choices` (compared by equality, so unhashable values are reported, not raised)."""
    if not any(type(value) is type(c) and value == c for c in choices):
        raise error(f"{name}={short(value)} is not supported; expected one of {list(choices)}")
    return value


def check_path(name, value, error):
    """A str or os.PathLike as a str path."""
    try:
        path = os.fspath(value)
    except TypeError:
        raise error(f"{name}={short(value)} is a {type(value).__name__}; expected a path (str or "
                    f"os.PathLike)") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if "\0" in path:
        raise error(f"{name}={short(path)} holds a NUL character; expected a path")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{name}={short(path)} is not valid UTF-8; expected a path ledref can name") from None
    return path


def check_callable(name, value, error, optional=True):
    """`value` itself when it can be called (or is None and `optional`), else error naming `name`."""
    if (value is None and optional) or callable(value):
        return value
    raise error(f"{name}={short(value)} is not callable; expected a function" + (" or None" if optional else ""))


def make_directory(name, path, error):
    """`path` (the argument `name`) as a directory, made if missing; a path that is a file is `error`."""
    path = check_path(name, path, error)
    if os.path.exists(path) and not os.path.isdir(path):
        raise error(f"{name}={short(path)} exists and is not a directory; expected a directory to write into")
    os.makedirs(path, exist_ok=True)
    return path


def inside(name):
    """Whether a file name written in a checkpoint stays inside the directory it is read from, judged
    on the name alone (the file may be a symlink, as in the Hugging Face cache): a non-empty relative
    path of '/'-separated parts, none of them empty, '.' or '..', without backslashes, colons or NULs
    (no absolute path, no drive, no way up)."""
    if not isinstance(name, str) or not name or any(c in name for c in "\\:\0") or os.path.isabs(name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


MAX_TEXT_BYTES = 64 * 2**20  # a text or JSON file read whole: led-base's tokenizer.json is 1.4 MB, 16k tokens ~100 kB


def read_bytes(stream, name, error, max_bytes=MAX_TEXT_BYTES):
    """At most `max_bytes` bytes of an open binary stream, or `error` naming `name` when it holds more
    (a file of gigabytes or /dev/zero is refused after reading max_bytes + 1, not read into memory)."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{name} holds more than {max_bytes} bytes; expected a text of at most {max_bytes // 2**20} MiB")
    return data


def utf8(data, name, error):
    """`data` decoded as UTF-8, or `error` naming `name` and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{name} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def read_text(path, error, what="file", max_bytes=MAX_TEXT_BYTES):
    """The UTF-8 text of a file of at most `max_bytes` bytes, or `error` naming the file (missing,
    unreadable, too large, not UTF-8)."""
    try:
        with open(path, "rb") as f:
            data = read_bytes(f, f"{what} {path}", error, max_bytes)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    return utf8(data, f"{what} {path}", error)


def read_json(path, error, what="file", expect=dict):
    """The parsed JSON of a file, or `error` naming the file and, for a syntax error, the line and column.
    `expect` (dict, list or None) is the type of the top-level value."""
    text = read_text(path, error, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"cannot read {what} {path} as JSON: it is not valid JSON ({e.msg} at line {e.lineno}, "
                    f"column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # integers too long to convert, nesting too deep
        raise error(f"cannot read {what} {path} as JSON: it is not valid JSON ({reason(e)[:120]})") from None
    if expect is not None and not isinstance(data, expect):
        kind = {dict: "an object", list: "an array"}.get(expect, expect.__name__)
        raise error(f"{what} {path} holds a JSON {_json_kind(data)}; expected {kind}")
    return data


def _json_kind(data):
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(data), "number")


def reason(e):
    """An exception's message on one line, for wrapping it into a named error."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if not isinstance(e, LedrefError) else text
