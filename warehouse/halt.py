"""HALT markers: files under ``<data>/HALT/`` that stop new positions until a person says so.

A reconciliation break (or anything else that makes the books untrustworthy) raises a halt:
``<data>/HALT/<id>.json`` holding the reason and the details. While any marker sits directly
in ``HALT/``, the intraday worker opens no new positions (exits still run). ``optbot ack <id>``
acknowledges one: the marker moves to ``HALT/acknowledged/<id>.json`` with who and when
added, so the history stays on disk.

Markers appear atomically (written to a hidden temp file, fsynced, then hard-linked into
place, which never overwrites): a reader sees a whole marker or none. Raising a halt whose id
exists already — active or acknowledged — changes nothing, so a rerun of the same check does
not raise the same halt twice. Times are passed in; nothing here reads a clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warehouse.atomic import ensure_dir, fsync_dir

HALT_DIR = "HALT"
ACKNOWLEDGED_DIR = "acknowledged"

_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class HaltError(Exception):
    """A halt marker cannot be raised, read or acknowledged."""


class UnknownHalt(HaltError):
    """No active halt has the given id."""


@dataclass(frozen=True, slots=True)
class Halt:
    """One halt marker."""

    id: str
    reason: str
    source: str  # what raised it, e.g. "reconcile"
    created_at: datetime
    details: tuple[str, ...] = ()
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """True until a person acknowledges it."""
        return self.acknowledged_at is None

    def to_json(self) -> str:
        """The marker file's text."""
        data = asdict(self)
        data["details"] = list(self.details)
        data["created_at"] = self.created_at.isoformat()
        data["acknowledged_at"] = self.acknowledged_at.isoformat() if self.acknowledged_at else None
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, origin: str) -> Halt:
        """Parse a marker file; ``HaltError`` names the file when it is unreadable."""
        try:
            data = json.loads(text)
            acknowledged = data.get("acknowledged_at")
            return cls(
                id=str(data["id"]),
                reason=str(data["reason"]),
                source=str(data.get("source", "")),
                created_at=datetime.fromisoformat(data["created_at"]),
                details=tuple(str(d) for d in data.get("details", ())),
                acknowledged_at=datetime.fromisoformat(acknowledged) if acknowledged else None,
                acknowledged_by=data.get("acknowledged_by"),
                extra=dict(data.get("extra") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HaltError(f"halt marker {origin} is unreadable: {exc}") from None


def halt_dir(root: Path) -> Path:
    """``<data>/HALT``."""
    return Path(root) / HALT_DIR


def check_halt_id(halt_id: str) -> str:
    """Return ``halt_id`` if it is a safe file name, else raise ``HaltError``."""
    if not _ID_PATTERN.fullmatch(halt_id):
        raise HaltError(
            f"halt id {halt_id!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(as printed by 'optbot status')"
        )
    return halt_id


def _write_new(path: Path, text: str) -> bool:
    """Create ``path`` with ``text`` atomically; False (and no change) if it exists."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def raise_halt(
    root: Path,
    *,
    halt_id: str,
    reason: str,
    source: str,
    created_at: datetime,
    details: list[str] | tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
) -> tuple[Halt, bool]:
    """Create the marker ``<root>/HALT/<halt_id>.json``; returns (halt, newly created).

    If a marker with this id exists (active or acknowledged), it is returned unchanged.
    """
    check_halt_id(halt_id)
    if created_at.tzinfo is None:
        raise HaltError("created_at must be timezone-aware")
    directory = halt_dir(root)
    ensure_dir(directory)
    existing = find_halt(root, halt_id)
    if existing is not None:
        return existing, False
    halt = Halt(halt_id, reason, source, created_at, tuple(details), extra=dict(extra or {}))
    if not _write_new(directory / f"{halt_id}.json", halt.to_json()):
        found = find_halt(root, halt_id)
        if found is None:  # pragma: no cover - removed between link and read
            raise HaltError(f"halt {halt_id} vanished while being raised")
        return found, False
    return halt, True


def _read(path: Path) -> Halt:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HaltError(f"halt marker {path} cannot be read: {exc.strerror}") from None
    return Halt.from_json(text, str(path))


def find_halt(root: Path, halt_id: str) -> Halt | None:
    """The halt with this id, active or acknowledged, or None."""
    check_halt_id(halt_id)
    for path in (
        halt_dir(root) / f"{halt_id}.json",
        halt_dir(root) / ACKNOWLEDGED_DIR / f"{halt_id}.json",
    ):
        if path.is_file():
            return _read(path)
    return None


def _markers(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
    )


def active_halts(root: Path) -> list[Halt]:
    """Every unacknowledged halt, oldest first.

    A marker that cannot be parsed still halts: it comes back with its file name as the id
    and the parse problem as the reason, never silently skipped.
    """
    halts = []
    for path in _markers(halt_dir(root)):
        try:
            halts.append(_read(path))
        except HaltError as exc:
            halts.append(Halt(path.stem, str(exc), "unknown", _mtime(path)))
    return sorted(halts, key=lambda h: (h.created_at, h.id))


def acknowledged_halts(root: Path) -> list[Halt]:
    """Halts a person has acknowledged, oldest first (unreadable ones skipped)."""
    halts = []
    for path in _markers(halt_dir(root) / ACKNOWLEDGED_DIR):
        with contextlib.suppress(HaltError):
            halts.append(_read(path))
    return sorted(halts, key=lambda h: (h.created_at, h.id))


def is_halted(root: Path) -> bool:
    """True while any halt is active."""
    return bool(_markers(halt_dir(root)))


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def acknowledge(root: Path, halt_id: str, *, by: str, at: datetime) -> Halt:
    """Acknowledge an active halt: record who and when, move it to ``HALT/acknowledged/``."""
    check_halt_id(halt_id)
    source = halt_dir(root) / f"{halt_id}.json"
    if not source.is_file():
        active = ", ".join(h.id for h in active_halts(root)) or "none"
        done = halt_dir(root) / ACKNOWLEDGED_DIR / f"{halt_id}.json"
        if done.is_file():
            raise UnknownHalt(f"halt {halt_id} was acknowledged already; active halts: {active}")
        raise UnknownHalt(f"no active halt {halt_id!r}; active halts: {active}")
    try:
        halt = _read(source)
    except HaltError:
        halt = Halt(halt_id, "unreadable marker", "unknown", _mtime(source))
    acked = Halt(
        halt.id,
        halt.reason,
        halt.source,
        halt.created_at,
        halt.details,
        acknowledged_at=at,
        acknowledged_by=by,
        extra=halt.extra,
    )
    target_dir = halt_dir(root) / ACKNOWLEDGED_DIR
    ensure_dir(target_dir)
    target = target_dir / f"{halt_id}.json"
    temp = target_dir / f".{halt_id}.{uuid.uuid4().hex}.tmp"
    with open(temp, "x", encoding="utf-8") as handle:
        handle.write(acked.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, target)
    fsync_dir(target_dir)
    # The active marker goes last: a crash in between leaves the halt in force, never lost.
    source.unlink()
    fsync_dir(source.parent)
    return acked
