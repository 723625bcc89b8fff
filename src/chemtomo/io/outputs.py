"""Output folders written as a set: staged, locked, checked, and never damaging.

Every command that writes a folder (``--out DIR``) goes through
:func:`output_folder`::

    with output_folder(out, inputs=[...]) as stage:
        write_volume_set(volumes, stage)      # any files, any sub-folders

* **Lock.** ``DIR`` is locked (``.DIR.lock`` beside it, an advisory
  ``flock`` released by the kernel if the process dies): a second process
  writing the same ``DIR`` stops at once with a one-line error.
* **Staging.** The files go to ``.DIR.staging-<id>`` beside ``DIR``; only when
  the block ends without an error is a manifest (``.chemtomo-files.json``: the
  size and SHA-256 of every file) written and the stage swapped onto ``DIR``
  by two renames. A failure or a kill leaves ``DIR`` as it was; stale stages
  of killed runs are removed, and a swap cut between its two renames is
  completed or undone, the next time ``DIR`` is locked.
* **Nothing damaged.** ``DIR`` must be new, empty or a folder chemtomo wrote
  (it has the manifest, or a ``chemtomo.json``): a folder of the user's own
  files is never replaced. An input inside ``DIR`` is refused, so a run never
  deletes or overwrites what it reads.

:func:`check_output_file` applies the same rules to single-file outputs
(``--out table.csv``), which :func:`chemtomo.io.write.atomic_write` writes.
:func:`verify_manifest` checks a folder against its manifest (``--resume``
and ``chemtomo report`` use it to refuse or redo damaged sets).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from ..core.errors import ChemtomoError

MANIFEST = ".chemtomo-files.json"
#: files that mark a folder as chemtomo's own (written by earlier versions too)
OWN_MARKERS = (MANIFEST, "chemtomo.json", "run.json", "batch.json", "step.json", "plan.json", "maps.json",
               "align.json", "simulation.json", "quantify.json", "demo.json")


def file_hash(path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def inputs_hash(paths) -> str:
    """One SHA-256 over the contents of `paths` (files or folders, in order; folders recursively)."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
            h.update(file_hash(f).encode() if f.is_file() else b"missing")
    return h.hexdigest()


def write_manifest(folder) -> dict:
    """Record the size and SHA-256 of every file under `folder` in ``folder/.chemtomo-files.json``."""
    folder = Path(folder)
    files = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != MANIFEST:
            files[f.relative_to(folder).as_posix()] = {"size": f.stat().st_size, "sha256": file_hash(f)}
    record = {"files": files}
    tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, folder / MANIFEST)
    return record


def verify_manifest(folder, *, require: bool = True) -> list[str]:
    """The problems of `folder` against its manifest: missing, resized or changed files (empty: intact).

    A folder without a manifest is a problem when `require` is True.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        return [f"{folder} has no {MANIFEST} (it was not completed)"] if require else []
    try:
        files = json.loads(path.read_text())["files"]
        items = list(files.items())
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return [f"{path} is damaged"]
    problems = []
    for rel, rec in items:
        f = folder / rel
        if not isinstance(rec, dict) or not f.is_file():
            problems.append(f"{f} is missing")
        elif f.stat().st_size != rec.get("size") or file_hash(f) != rec.get("sha256"):
            problems.append(f"{f} changed since it was written")
    return problems


def safe_name(name: str, what: str) -> str:
    """Refuse a name that cannot be one file name inside the output folder (``..``, ``/``, absolute, empty)."""
    text = str(name)
    if (not text or text in (".", "..") or text.startswith(".") or any(c in text for c in '/\\:*?"<>|\0')
            or len(text.encode()) > 200 or text != text.strip()):
        raise ChemtomoError(f"{what} {text!r} cannot be a file name inside the output folder; use letters, digits, "
                            "'_', '-' or '.' (not leading), at most 200 bytes")
    return text


def _resolve(path) -> Path:
    return Path(os.path.abspath(os.fspath(path)))


def _check_target(out: Path, what: str) -> None:
    if len(out.name.encode()) > 240:
        raise ChemtomoError(f"{what} name {out.name[:40]}... is too long for the file system; use a shorter name")
    parent = out.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ChemtomoError(f"{what} {out} lies under {probe}, which is a file, not a folder; choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ChemtomoError(f"{what} {out}: no permission to write in {probe}; choose a folder you can write to")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def check_output_folder(out, *, inputs=(), what: str = "--out") -> Path:
    """Refuse an output folder that is a file, holds the user's own files or contains an input; returns it absolute."""
    if out is None or not str(out).strip():
        raise ChemtomoError(f"{what} is empty; give an output folder")
    out = _resolve(out)
    _check_target(out, what)
    if out.exists() and not out.is_dir():
        raise ChemtomoError(f"{what} {out} is an existing file, not a folder; give a folder name")
    real_out = Path(os.path.realpath(out))
    for p in inputs:
        if p is None:
            continue
        rp = Path(os.path.realpath(_resolve(p)))
        if _inside(rp, real_out):
            raise ChemtomoError(f"input {p} lies inside {what} {out}, which is replaced as a whole; write to another "
                                "folder")
    if out.is_dir():
        try:
            entries = [e for e in os.listdir(out)]
        except OSError as exc:
            raise ChemtomoError(f"{what} {out} cannot be read ({exc.strerror}); choose another folder") from None
        if entries and not any((out / m).exists() for m in OWN_MARKERS):
            shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
            raise ChemtomoError(f"{what} {out} already holds files chemtomo did not write ({shown}); give a new or "
                                "empty folder")
    return out


def check_output_file(out, *, inputs=(), what: str = "--out", suffixes=None) -> Path:
    """Refuse an output file that is a folder, one of the inputs, or has the wrong suffix; returns it absolute."""
    if out is None or not str(out).strip():
        raise ChemtomoError(f"{what} is empty; give an output file name")
    out = _resolve(out)
    _check_target(out, what)
    if suffixes and out.suffix.lower() not in suffixes:
        raise ChemtomoError(f"{what} {out.name} must end in {' or '.join(suffixes)}")
    if out.is_dir():
        raise ChemtomoError(f"{what} {out} is a folder; give a file name")
    real = os.path.realpath(out)
    for p in inputs:
        if p is not None and os.path.realpath(_resolve(p)) == real:
            raise ChemtomoError(f"{what} {out} is also an input; write to another file so the input is kept")
    return out


@contextlib.contextmanager
def lock(out, *, what: str = "--out"):
    """Hold an exclusive advisory lock on folder `out` (``.NAME.lock`` beside it); refuse if another process has it."""
    import fcntl

    out = _resolve(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise ChemtomoError(f"another chemtomo process is writing {what} {out}; wait for it to finish or "
                                    "choose another folder") from None
            raise
        try:  # the file may have been removed by the previous holder between our open and lock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _recover(out)
        yield out
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _leftovers(out: Path, kind: str) -> list[Path]:
    prefix = f".{out.name}.{kind}-"
    try:
        return [out.parent / n for n in os.listdir(out.parent) if n.startswith(prefix)]
    except OSError:
        return []


def _recover(out: Path) -> None:
    """With the lock held: finish or undo a swap cut short by a kill, and remove stale stages."""
    olds = _leftovers(out, "old")
    if not out.exists() and olds:  # killed between the two renames: put the previous set back
        newest = max(olds, key=lambda p: p.stat().st_mtime)
        os.replace(newest, out)
        olds.remove(newest)
    for p in olds + _leftovers(out, "staging"):
        shutil.rmtree(p, ignore_errors=True)


def publish(stage: Path, out: Path) -> None:
    """Write the manifest of `stage` and swap it onto `out` (the caller holds the lock)."""
    write_manifest(stage)
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, out)


@contextlib.contextmanager
def output_folder(out, *, inputs=(), what: str = "--out"):
    """Yield a staging folder for the outputs of one command; swap it onto `out` on success (module notes)."""
    out = check_output_folder(out, inputs=inputs, what=what)
    with lock(out, what=what):
        stage = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
        stage.mkdir()
        try:
            yield stage
            publish(stage, out)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
