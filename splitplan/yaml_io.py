"""Reading the YAML files a user hands over (scenarios, catalogs, stacks), defensively.

Every problem becomes one SplitplanError line naming the file. Beyond syntax, the reader refuses what
would turn a small file into unbounded work later: alias chains that expand exponentially ("billion
laughs": 1 KB of `&a [*a, *a, ...]` becomes 10^9 nodes for any code that walks or prints the value),
nesting deep enough to overflow the parser's recursion, and files far larger than any real scenario or
catalog. It also reads `1e9` as the number YAML 1.2 says it is (PyYAML's YAML 1.1 rules need `1.0e9`
and would hand the string '1e9' to a numeric field).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitplan.errors import SplitplanError

if TYPE_CHECKING:
    import yaml

# The largest bundled scenario is 5 KB and the bundled catalog 10 KB; 512 KiB (a catalog of thousands of
# entries) is far past any hand-written file, and PyYAML (pure Python) parses that much in 1-3 s, while
# 2 MiB took 13 s on the shared 2-core machine.
MAX_YAML_BYTES = 512 * 1024
# Nodes that aliases may add beyond the file's own: ample for reusing a design list or an SLO set a few
# times, far below the 10^9 of a billion-laughs file. Counted on the parsed graph, so checking is linear.
MAX_ALIAS_EXPANSION_NODES = 100_000

_EXPONENT_FLOAT_PATTERN = r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"


@functools.cache
def _loaders() -> tuple[type, type | None]:
    """(the bounded pure-Python loader, the libyaml loader or None), built on the first parse.

    PyYAML is imported here rather than at the top: it costs ~27 ms (yaml.reader alone compiles a large
    regex), which a command that parses no YAML should not pay (with the parse cache,
    splitplan/yaml_cache.py, a warm start parses no bundled file).

    _BoundedLoader: SafeLoader plus YAML 1.2 exponent floats; alias expansion is checked on the composed
    node graph. _FastLoader: the files shipped with splitplan (catalog, kernels, stacks: read by nearly
    every command) are parsed by libyaml when PyYAML has it: ten times faster, and they are not hostile
    input (tests check that both parsers give the same values for every one of them). What a user hands
    over keeps the pure-Python parser, whose errors and recursion limit the messages above rely on."""
    import re

    import yaml

    exponent_float = re.compile(_EXPONENT_FLOAT_PATTERN)

    class _BoundedLoader(yaml.SafeLoader):
        """SafeLoader plus YAML 1.2 exponent floats; alias expansion is checked on the composed node graph."""

    _BoundedLoader.add_implicit_resolver("tag:yaml.org,2002:float", exponent_float, list("-+0123456789"))
    if not hasattr(yaml, "CSafeLoader"):
        return _BoundedLoader, None

    class _FastLoader(yaml.CSafeLoader):
        """CSafeLoader plus YAML 1.2 exponent floats, for the bundled files."""

    _FastLoader.add_implicit_resolver("tag:yaml.org,2002:float", exponent_float, list("-+0123456789"))
    return _BoundedLoader, _FastLoader


def has_fast_loader() -> bool:
    """Whether this PyYAML has libyaml (bundled files are then parsed by it)."""
    return _loaders()[1] is not None


def _expanded_nodes(root: yaml.Node) -> tuple[int, int]:
    """(distinct nodes, nodes once every alias is expanded), without expanding anything (memoised DFS)."""
    from yaml import MappingNode, SequenceNode

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, MappingNode):
            return [part for pair in node.value for part in pair]
        return []

    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children(node))
            continue
        if key in size:
            continue
        if key in on_path:
            raise SplitplanError("YAML alias refers to itself (a recursive structure); write the value out")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children(node) if id(child) not in size)
    return len(size), size[id(root)]


def load_yaml_text(text: str, source: str, bundled: bool = False) -> Any:
    """Parse one YAML document under the limits above; `source` names the file in errors. `bundled`: a
    file shipped with splitplan (libyaml parses it when available)."""
    import yaml

    bounded_loader, fast_loader = _loaders()
    loader = None
    try:
        cls = fast_loader if bundled and fast_loader is not None else bounded_loader
        loader = cls(text)  # the reader rejects control characters here already
        node = loader.get_single_node()
        if node is None:
            return None
        distinct, expanded = _expanded_nodes(node)
        if expanded - distinct > MAX_ALIAS_EXPANSION_NODES:
            raise SplitplanError(f"YAML aliases expand {distinct:,} nodes to {expanded:,} (at most "
                                 f"{MAX_ALIAS_EXPANSION_NODES:,} added nodes allowed); write the values out",
                                 source=source)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as exc:  # binary data: a NUL or control character
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise SplitplanError(f"malformed YAML at line {line}: character #x{exc.character:04x} is not text "
                             "(a binary file?)", source=source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise SplitplanError(f"malformed YAML{at}: {problem}", source=source) from None
    except RecursionError:
        raise SplitplanError("malformed YAML: nested too deeply", source=source) from None
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=source) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning every I/O, size or syntax problem into a one-line SplitplanError.

    A bundled file's data may come from the parse cache (splitplan/yaml_cache.py), keyed by its bytes."""
    path = Path(path)
    try:
        if path.is_dir():
            raise SplitplanError("is a directory, expected a YAML file", source=str(path))
        size_bytes = path.stat().st_size
        if size_bytes > MAX_YAML_BYTES:
            raise SplitplanError(f"file is {size_bytes / 2**20:,.1f} MiB; scenario, catalog and calibration files "
                                 f"are at most {MAX_YAML_BYTES // 1024} KiB", source=str(path))
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SplitplanError("file not found", source=str(path)) from None
    except OSError as exc:
        raise SplitplanError(f"cannot read file ({exc.__class__.__name__})", source=str(path)) from None
    bundled = _is_bundled(path)
    if bundled:
        from splitplan import yaml_cache

        cached = yaml_cache.load(raw)
        if cached is not None:
            return cached
    data = load_yaml_text(_decode(raw, str(path)), str(path), bundled=bundled)
    if data is None:
        raise SplitplanError("file is empty", source=str(path))
    if bundled:
        yaml_cache.store(raw, data)
    return data


def _decode(raw: bytes, source: str) -> str:
    """The file's text as `Path.read_text(encoding="utf-8-sig")` gives it: the byte-order mark that
    spreadsheet and Windows editors add is dropped, line ends become "\\n" (universal newlines)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SplitplanError(f"not UTF-8 text (byte {exc.start:,} is 0x{exc.object[exc.start]:02x}; a binary "
                             "file?)", source=source) from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _is_bundled(path: Path) -> bool:
    """Is `path` one of the files shipped in splitplan's profiles folder (not a user's override)?"""
    from splitplan.resources import bundled_profiles_dir

    try:
        return path.resolve().is_relative_to(bundled_profiles_dir().resolve())
    except (OSError, RuntimeError):
        return False
