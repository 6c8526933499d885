"""Atlas's migration-directory integrity file (``atlas.sum``), computed, written and verified in Python.

The Atlas binary cannot be installed on our build machines, yet every commit that touches
``migrations/`` must carry a matching ``atlas.sum`` or ``atlas migrate apply`` refuses to run in the
cluster. This module reproduces Atlas's algorithm byte for byte so CI can catch a stale or tampered
sum before a Job ever starts.

Algorithm source: ariga/atlas, ``sql/migrate/dir.go`` (``LocalDir.Files``, ``NewHashFile``,
``HashFile.Sum``, ``HashFile.MarshalText``, ``HashFile.UnmarshalText``, ``Validate``, the ``directive``
regular expression). In short:

- the files are the directory's top-level ``*.sql`` files, sorted by name (bytewise);
- ONE running SHA-256 is fed each file's name then its bytes; a file's entry is the base64 of the
  running digest at that point, so an entry covers that file and every file before it;
- a file whose first line carries ``atlas:sum ignore`` feeds only its name and gets no entry;
- the header ``h1:`` is the base64 SHA-256 over every entry's name and entry string, in order;
- the text is ``h1:<header>\\n`` followed by ``<name> h1:<entry>\\n`` per file.

Checked against ``sql/migrate/testdata/partial-checkpoint/atlas.sum`` from the same repository
(see tests/test_atlas_sum.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SUM_FILE = "atlas.sum"

# dir.go's reDirective, anchored at the very start of the file, so only a directive on the first
# line counts. Go's \w is ASCII-only, hence re.ASCII.
_DIRECTIVE = re.compile(r"([ -~]*)atlas:(\w+)(?: +([ -~]*))*", re.ASCII)


class AtlasSumError(ValueError):
    """The directory and its atlas.sum disagree, or atlas.sum is malformed."""


@dataclass(frozen=True)
class SumEntry:
    name: str
    hash: str


def migration_files(directory: str | Path) -> list[tuple[str, bytes]]:
    """The files Atlas hashes and executes: top-level ``*.sql`` files, sorted bytewise by name.

    Atlas uses ``fs.Glob(d, "*.sql")``, which also matches names that begin with a dot, and does not
    descend into subdirectories.
    """
    root = Path(directory)
    if not root.is_dir():
        raise AtlasSumError(f"migration directory {str(root)!r} does not exist or is not a directory")
    names = sorted((p.name for p in root.iterdir() if p.name.endswith(".sql") and p.is_file()),
                   key=lambda n: n.encode())
    return [(name, (root / name).read_bytes()) for name in names]


def _sum_ignored(content: bytes) -> bool:
    match = _DIRECTIVE.match(content.decode("utf-8", errors="replace"))
    return bool(match) and match.group(2) == "sum" and (match.group(3) or "") == "ignore"


def compute(files: list[tuple[str, bytes]]) -> list[SumEntry]:
    """Atlas's ``NewHashFile``: one entry per file, each the running digest after that file."""
    running = hashlib.sha256()
    entries: list[SumEntry] = []
    for name, content in files:
        running.update(name.encode())
        if _sum_ignored(content):
            continue
        running.update(content)
        # Go's hash.Sum(nil) does not reset the state; copy() is the Python equivalent.
        entries.append(SumEntry(name, base64.b64encode(running.copy().digest()).decode()))
    return entries


def total(entries: list[SumEntry]) -> str:
    """Atlas's ``HashFile.Sum``: the header line's hash."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(entry.name.encode())
        digest.update(entry.hash.encode())
    return base64.b64encode(digest.digest()).decode()


def render(entries: list[SumEntry]) -> str:
    """Atlas's ``HashFile.MarshalText``: the exact text of atlas.sum."""
    body = "".join(f"{e.name} h1:{e.hash}\n" for e in entries)
    return f"h1:{total(entries)}\n{body}"


def parse(text: str) -> list[SumEntry]:
    """Atlas's ``HashFile.UnmarshalText``, including its check that the header matches the entries."""
    # Go's bufio.Scanner: split on "\n", drop one trailing "\r", no empty token after the last "\n".
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].startswith("h1:"):
        raise AtlasSumError(f"{SUM_FILE} is malformed: the first line must be 'h1:<sum>'")
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        name, sep, value = line.partition("h1:")
        if not sep:
            raise AtlasSumError(f"{SUM_FILE} is malformed: line {number} {line!r} is not '<file> h1:<hash>'")
        entries.append(SumEntry(name.strip(), value))
    if lines[0][len("h1:"):] != total(entries):
        raise AtlasSumError(f"{SUM_FILE} was edited by hand: its header does not match its own entries; "
                            f"regenerate it (python -m components.atlas_sum write DIR, or atlas migrate hash)")
    return entries


def write(directory: str | Path) -> str:
    """Regenerate ``atlas.sum`` in ``directory`` (what ``atlas migrate hash`` does); returns its text."""
    text = render(compute(migration_files(directory)))
    (Path(directory) / SUM_FILE).write_bytes(text.encode())
    return text


def verify(directory: str | Path) -> None:
    """Raise ``AtlasSumError`` naming what changed if ``directory`` no longer matches its atlas.sum."""
    sum_path = Path(directory) / SUM_FILE
    files = migration_files(directory)
    check(files, sum_path.read_bytes().decode("utf-8", errors="replace") if sum_path.is_file() else None,
          str(sum_path))


def check(files: list[tuple[str, bytes]], sum_text: str | None, label: str = SUM_FILE) -> None:
    """Atlas's ``Validate`` over already-read files; ``sum_text`` is None when there is no atlas.sum.

    Atlas itself only says "checksum mismatch"; naming the added, removed or first edited file is
    what makes the error actionable in a review.
    """
    if sum_text is None:
        if files:
            raise AtlasSumError(f"{label} is missing; generate it "
                                f"(python -m components.atlas_sum write DIR, or atlas migrate hash)")
        return
    recorded = parse(sum_text)
    actual = compute(files)
    if total(recorded) == total(actual):
        return
    recorded_names = [e.name for e in recorded]
    actual_names = [e.name for e in actual]
    problems = []
    if added := [n for n in actual_names if n not in recorded_names]:
        problems.append(f"added without rehashing: {', '.join(added)}")
    if removed := [n for n in recorded_names if n not in actual_names]:
        problems.append(f"removed or renamed: {', '.join(removed)}")
    if not problems:
        # Entries chain, so the first differing entry is the first edited file; later entries
        # differ as a consequence and say nothing about their own files.
        first = next(a.name for a, r in zip(actual, recorded) if a != r)
        problems.append(f"edited after hashing: {first}")
    raise AtlasSumError(f"{label} does not match the migration files ({'; '.join(problems)}). "
                        f"An applied migration must not change: add a new migration instead; "
                        f"if this change is intended, regenerate the sum")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("verify", "write"):
        print("usage: python -m components.atlas_sum verify|write DIR", file=sys.stderr)
        return 2
    command, directory = argv
    try:
        if command == "write":
            write(directory)
            print(f"wrote {Path(directory) / SUM_FILE}")
        else:
            verify(directory)
            print(f"{Path(directory) / SUM_FILE} matches")
    except AtlasSumError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
