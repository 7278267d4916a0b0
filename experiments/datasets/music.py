"""Bach chorales as 88-key piano rolls: a stand-in for JSB Chorales.

The JSB Chorales benchmark of Boulanger-Lewandowski et al. (2012) is not
installable offline; the chorales themselves are. ``music21`` ships 413
``bwv*`` chorale files under ``music21/corpus/bach/`` (``pip install
music21==10.5.1``, about 114 MB; ``music21.corpus.parse("bach/bwv66.6")``
reads one). This module turns them into piano rolls in the benchmark's
format: one binary frame per quarter note over the 88 piano keys. Numbers
computed on it are comparable in kind, not in value, with published JSB
figures: the set of pieces, the split and the preprocessing all differ.

Piano roll. ``piano_roll`` samples a score at the instants ``t = 0, 1, 2,
...`` (in quarter notes from the start of the score, the first beat of a
pickup measure being ``t = 0``) while ``t`` is before the end of the last
kept part, so ``T = ceil(length in quarters)``. Key ``k`` (MIDI pitch
``21 + k``, A0 to C8) is on at step ``t`` if a note of a kept part sounds at
that instant: ``onset <= t < onset + duration``. Each pitch of a chord
counts; rests, and notes that start and end between two instants (an eighth
note on an off-beat), leave no mark. Repeats are not expanded.

What is kept. Many files add instrument parts to the four voices (horns,
trumpets, oboes, strings, continuo, timpani). Only the four voices are kept:
the parts whose name (``partName``, else ``id``) begins with the word
Soprano, Alto, Tenor or Bass, case-insensitively, one part each. A part named
"Soprano Oboe 1 Violin1" is the soprano line doubled by instruments, and is
kept. A piece without exactly one part for each voice is skipped. Of the
music21 10.5.1 corpus:

* 413 ``bwv*`` files; the three Humdrum duplicates (``bwv277.krn``,
  ``bwv281.krn``, ``bwv366.krn``, which also exist as ``.mxl``) are dropped
  in favour of MusicXML, leaving 410 pieces;
* 3 are skipped: ``bwv227.3`` and ``bwv27.6`` (two soprano parts) and
  ``bwv846`` (a keyboard prelude);
* 407 pieces have their four voices: 365 files with exactly four parts and
  42 from which instrument parts were dropped;
* 3 of these duplicate another piece note for note (see
  ``drop_duplicates``) and are dropped, leaving 404 pieces, 22,942 time
  steps in all (24 to 272 per piece).

Most steps sound four keys (88%) or three (9%, voices in unison or one
resting). 715 steps (3%) are silent: in a few orchestral chorales the voices
pause while the dropped instruments play interludes (211 of the 272 steps of
``bwv248.64-6``, 130 of ``bwv79.3``'s).

Splits. ``split_pieces`` sorts the piece names, shuffles them with
``np.random.default_rng(0)`` and cuts them in the proportions of JSB's
229 / 76 / 77 pieces. For the 404 pieces: 243 train (14,051 steps), 80
validation (4,342 steps) and 81 test (4,549 steps) pieces. The per-key
marginal baseline (``marginal_nll``, fitted on train) scores 11.21 nats per
step on validation and 11.34 on test.

Parsing takes 20-40 s for the whole corpus, so ``load_chorale_rolls``
caches every roll in one ``.npz`` under ``packaged.default_cache_dir()``, keyed by a
hash of the music21 version, the parser version and every source file's name
and bytes; later calls read the cache (well under a second) without
importing music21.

References:
  Boulanger-Lewandowski, Bengio and Vincent, "Modeling Temporal Dependencies
  in High-Dimensional Sequences: Application to Polyphonic Music Generation
  and Transcription", ICML 2012. https://arxiv.org/abs/1206.6392
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import pathlib
import re
import subprocess
import sys
import tempfile
from typing import Any, Optional, Sequence, Union

import numpy as np

from experiments.datasets import packaged

PathLike = packaged.PathLike

#: What ``experiments.datasets`` knows this data set as.
KIND = "piano_rolls"

#: Keys of the piano roll: MIDI pitch ``LOWEST_PITCH + k`` for ``k < NUM_KEYS``.
NUM_KEYS = 88
LOWEST_PITCH = 21  # A0

#: The four voices, in the order ``voice_parts`` returns them.
VOICES: tuple[str, ...] = ("soprano", "alto", "tenor", "bass")

#: Number of pieces in JSB Chorales' train / validation / test splits, whose
#: proportions ``split_pieces`` copies.
JSB_SPLIT_SIZES: dict[str, int] = {"train": 229, "validation": 76, "test": 77}

#: Where the chorales ship.
SOURCE = packaged.Source("music21", "corpus/bach", what="the Bach chorale corpus",
                         install="pip install music21==10.5.1")

# Bumped whenever piano_roll or the choice of kept pieces changes, so that
# stale caches are never read.
_PARSER_VERSION = 1

# Chorale file formats, the preferred first when a piece exists in several.
_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".krn")
_CHORALE_NAME = re.compile(r"bwv\S+", re.IGNORECASE)


def corpus_dir() -> pathlib.Path:
  """The ``corpus/bach`` folder of the installed ``music21``, found without importing it.

  Returns:
    The folder holding ``bwv*.mxl`` (and a few ``.xml`` / ``.krn``) files.

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) if music21 is not
      installed, with the install command in the message.
  """
  return packaged.locate(SOURCE)


def _voice_of(part: Any) -> Optional[str]:
  """``"soprano"``, ..., ``"bass"`` if the part's name begins with a voice, else None."""
  name = part.partName or (part.id if isinstance(part.id, str) else None) or ""
  words = re.split(r"[\s,.;:/()\-]+", name.strip().lower(), maxsplit=1)
  # Whole words only: "Bassoon" and "Basso continuo" are instruments.
  return words[0] if words[0] in VOICES else None


def voice_parts(score: Any) -> tuple[Any, ...]:
  """The soprano, alto, tenor and bass parts of a chorale.

  Args:
    score: a ``music21.stream.Score``.

  Returns:
    The four parts whose names begin with Soprano, Alto, Tenor and Bass (see
    the module docstring), in that order.

  Raises:
    ValueError: if some voice has no part or more than one.
  """
  # getElementsByClass rather than .parts: any stream has it (a Part holds
  # no parts, and fails below with a clear message).
  parts = list(score.getElementsByClass("Part"))
  found: dict[str, list[Any]] = {voice: [] for voice in VOICES}
  for part in parts:
    voice = _voice_of(part)
    if voice is not None:
      found[voice].append(part)
  if any(len(members) != 1 for members in found.values()):
    names = [part.partName or part.id for part in parts]
    raise ValueError(f"expected one part for each of {list(VOICES)}, found "
                     f"{ {v: len(p) for v, p in found.items()} } among the "
                     f"{type(score).__name__}'s parts {names} (pass "
                     f"voices_only=False to piano_roll to keep every note)")
  return tuple(found[voice][0] for voice in VOICES)


def piano_roll(score: Any, *, voices_only: bool = True) -> np.ndarray:
  """Samples a score per quarter note onto the 88 piano keys.

  Args:
    score: a ``music21`` stream: a ``Score`` of parts or, with
      ``voices_only=False``, any stream (a ``Part``, a flat stream of notes).
    voices_only: keep only the soprano, alto, tenor and bass parts (see
      ``voice_parts``); if False, every note of the stream counts.

  Returns:
    ``(T, 88)`` float32 of 0 and 1: ``roll[t, k] = 1`` if a note of MIDI pitch
    ``21 + k`` sounds at quarter ``t`` (``onset <= t < onset + duration``),
    with ``T = ceil(end of the last kept part, in quarters)``.

  Raises:
    ValueError: if ``voices_only`` and the voices cannot be identified, or a
      pitch lies outside the piano (MIDI 21..108).
  """
  if voices_only:
    sources = [(part, float(score.elementOffset(part))) for part in voice_parts(score)]
  else:
    sources = [(score, 0.0)]
  # Offsets and durations are floats or, for tuplets, Fractions: both are
  # exact, so ceil never misplaces a note that starts or ends on a beat.
  length = max((start + part.highestTime for part, start in sources), default=0.0)
  steps = math.ceil(length)
  roll = np.zeros((steps, NUM_KEYS), np.float32)
  for part, start in sources:
    flat = part.flatten()
    for note in flat.notes:
      onset = start + flat.elementOffset(note)
      first, stop = math.ceil(onset), min(math.ceil(onset + note.quarterLength), steps)
      if stop <= first:
        continue  # sounds only between two sampling instants (or a grace note)
      for pitch in note.pitches:
        key = pitch.midi - LOWEST_PITCH
        if not 0 <= key < NUM_KEYS:
          raise ValueError(f"pitch {pitch.nameWithOctave} (MIDI {pitch.midi}) at "
                           f"offset {onset} is outside the 88 piano keys")
        roll[first:stop, key] = 1.0
  return roll


def _parse_file(path: str) -> tuple[Optional[np.ndarray], str]:
  """Roll of one chorale file (uint8), or None and why it was skipped."""
  from music21 import converter  # pylint: disable=g-import-not-at-top
  # forceSource: do not leave music21's own pickles in its scratch folder; we
  # cache the rolls instead.
  score = converter.parse(path, forceSource=True)
  try:
    return piano_roll(score).astype(np.uint8), ""
  except ValueError as e:
    return None, str(e)


def _parse_files_to(output: str, paths: Sequence[str]) -> None:
  """Worker entry point: parses ``paths`` and saves the rolls to ``output`` (.npz)."""
  parsed = [_parse_file(path) for path in paths]
  rolls = [roll for roll, _ in parsed if roll is not None]
  np.savez(output,
           lengths=np.array([-1 if roll is None else len(roll) for roll, _ in parsed],
                            np.int64),
           rolls=(np.concatenate(rolls) if rolls else np.zeros((0, NUM_KEYS), np.uint8)))


# A worker imports this module from the checkout (whose folder is its first
# argument) and nothing heavier than numpy and music21: no JAX.
_WORKER_SCRIPT = """\
import sys
sys.path.insert(0, sys.argv[1])
from experiments.datasets import music
music._parse_files_to(sys.argv[2], sys.argv[3:])
"""
_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _parse_in_workers(paths: Sequence[str], processes: int) -> list[Optional[np.ndarray]]:
  """Rolls of ``paths`` (None where skipped), parsed by worker processes.

  The workers are fresh interpreters (``subprocess``), not a
  ``multiprocessing`` pool: forking a process that runs JAX can deadlock the
  child, and the "spawn" and "forkserver" methods re-run the caller's main
  script in every worker, which breaks scripts that call ``load_chorales`` at
  top level (without an ``if __name__ == "__main__":`` guard).
  """
  chunks = [list(paths[i::processes]) for i in range(processes)]
  with tempfile.TemporaryDirectory(prefix="seqjax_chorales_") as tmp:
    workers = []
    for i, chunk in enumerate(chunks):
      output = os.path.join(tmp, f"rolls_{i}.npz")
      log = open(os.path.join(tmp, f"log_{i}.txt"), "wb")  # pylint: disable=consider-using-with
      command = [sys.executable, "-c", _WORKER_SCRIPT, str(_ROOT), output]
      process = subprocess.Popen(command + chunk, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT)
      workers.append((process, log, output))
    try:
      for process, log, _ in workers:
        process.wait()
        log.close()
    finally:
      for process, log, _ in workers:
        if process.poll() is None:
          process.kill()
          process.wait()
        log.close()
    results: dict[str, Optional[np.ndarray]] = {}
    for (process, log, output), chunk in zip(workers, chunks):
      if process.returncode != 0:
        with open(log.name, encoding="utf-8", errors="replace") as f:
          tail = f.read()[-3000:]
        raise RuntimeError(f"a worker parsing chorales failed with exit code "
                           f"{process.returncode}:\n{tail}")
      with np.load(output, allow_pickle=False) as data:
        lengths, frames = data["lengths"], data["rolls"]
      start = 0
      for path, length in zip(chunk, lengths):
        if length < 0:
          results[path] = None
        else:
          results[path] = frames[start:start + length]
          start += length
  return [results[path] for path in paths]


def chorale_files(directory: Optional[PathLike] = None) -> dict[str, pathlib.Path]:
  """Chorale name -> file, one file per chorale.

  Args:
    directory: a folder holding ``bwv*`` files in MusicXML (``.mxl``,
      ``.musicxml``, ``.xml``) or Humdrum (``.krn``); defaults to
      ``corpus_dir()``.

  Returns:
    ``{"bwv1.6": path, ...}`` in sorted name order (the name is the file name
    without its extension). A chorale present in several formats keeps the
    first of ``.mxl``, ``.musicxml``, ``.xml``, ``.krn``.
  """
  if directory is None:
    root = corpus_dir()
  else:
    root = pathlib.Path(directory).expanduser()
    if not root.is_dir():
      raise ValueError(f"directory must be an existing folder of chorale files, "
                       f"got {str(directory)!r}")
  files: dict[str, pathlib.Path] = {}
  rank = lambda path: _EXTENSIONS.index(path.suffix.lower())
  for path in sorted(root.iterdir()):
    if (path.is_file() and path.suffix.lower() in _EXTENSIONS and
        _CHORALE_NAME.fullmatch(path.stem) and
        (path.stem not in files or rank(path) < rank(files[path.stem]))):
      files[path.stem] = path
  if not files:
    raise ValueError(f"directory {str(root)!r} holds no bwv* chorale files "
                     f"(with extensions {list(_EXTENSIONS)})")
  return dict(sorted(files.items()))


def _music21_version() -> str:
  try:
    return importlib.metadata.version("music21")
  except importlib.metadata.PackageNotFoundError:
    raise packaged.DataNotFoundError(SOURCE.message, name="music21") from None


def _read_cache(path: pathlib.Path) -> Optional[dict[str, np.ndarray]]:
  data = packaged.read_npz(path, ("names", "lengths", "rolls"))
  if data is None:
    return None  # missing or unreadable: rebuilt, then overwritten
  names, lengths, frames = data["names"], data["lengths"], data["rolls"]
  if (frames.ndim != 2 or frames.shape[1] != NUM_KEYS or
      lengths.sum() != frames.shape[0] or len(names) != len(lengths)):
    return None
  ends = np.cumsum(lengths)
  return {str(name): frames[end - length:end].astype(np.float32)
          for name, length, end in zip(names, lengths, ends)}


def load_chorale_rolls(*, cache_dir: Optional[PathLike] = None,
                       directory: Optional[PathLike] = None,
                       processes: int = 2) -> dict[str, np.ndarray]:
  """Every usable chorale's piano roll, parsed once and cached.

  Args:
    cache_dir: where to cache the rolls; defaults to ``packaged.default_cache_dir()``.
      The file is ``bach_chorales_<hash>.npz``, the hash covering the music21
      version, the parser version and every source file's name and bytes.
    directory: folder of ``bwv*`` chorale files; defaults to ``corpus_dir()``
      (music21's ``corpus/bach``).
    processes: on a cache miss, parse in this many worker processes (fresh
      interpreters that import only numpy and music21: safe in a process
      that runs JAX, and needing no ``__main__`` guard in the calling
      script). ``1`` parses in this process.

  Returns:
    Chorale name (e.g. ``"bwv66.6"``) -> ``(T_i, 88)`` float32 roll, in sorted
    name order, for the chorales whose four voices were found, without
    duplicates (404 of the music21 10.5.1 corpus; see the module docstring).
  """
  if processes < 1:
    raise ValueError(f"processes must be >= 1, got {processes}")
  files = chorale_files(directory)
  digest = packaged.source_digest(
      {"parser": _PARSER_VERSION, "music21": _music21_version()},
      {path.name: path.read_bytes() for path in files.values()})
  cache_file = packaged.cache_path(cache_dir, "bach_chorales", digest, ".npz")
  cached = _read_cache(cache_file)
  if cached is not None:
    return drop_duplicates(cached)

  paths = [str(path) for path in files.values()]
  if processes == 1 or len(paths) == 1:
    parsed = [_parse_file(path)[0] for path in paths]
  else:
    parsed = _parse_in_workers(paths, min(processes, len(paths)))
  rolls = {name: roll for name, roll in zip(files, parsed) if roll is not None}
  names = list(rolls)
  packaged.write_npz(cache_file, {
      "names": np.array(names, dtype=str),
      "lengths": np.array([len(rolls[name]) for name in names], np.int64),
      "rolls": (np.concatenate([rolls[name] for name in names]) if names
                else np.zeros((0, NUM_KEYS), np.uint8)),
  }, compressed=True)
  return drop_duplicates({name: roll.astype(np.float32) for name, roll in rolls.items()})


def drop_duplicates(rolls: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Keeps one piece of each set of pieces with identical rolls.

  The corpus holds some chorales twice under two names (``bwv190.7`` and its
  instrumental copy ``bwv190.7-inst``, ``bwv197.7-a`` and ``bwv398``,
  ``bwv62.6`` and ``bwv274``); were the copies to land in different splits,
  a model would be tested on a piece it was trained on.

  Args:
    rolls: name -> ``(T_i, 88)`` roll.

  Returns:
    The same mapping, in the same order, without every piece whose roll
    equals that of a piece earlier in sorted name order.
  """
  seen: set[bytes] = set()
  kept = set()
  for name in sorted(rolls):
    roll = np.asarray(rolls[name], np.uint8)
    key = str(roll.shape).encode() + roll.tobytes()
    if key not in seen:
      seen.add(key)
      kept.add(name)
  return {name: roll for name, roll in rolls.items() if name in kept}


def split_sizes(num_pieces: int) -> dict[str, int]:
  """Split sizes in JSB's 229 / 76 / 77 proportions.

  Args:
    num_pieces: how many pieces to split.

  Returns:
    ``{"train": n_train, "validation": n_valid, "test": n_test}`` summing to
    ``num_pieces``: the held-out sizes rounded, the rest for training.
    ``split_sizes(382) == {"train": 229, "validation": 76, "test": 77}`` and
    ``split_sizes(404) == {"train": 243, "validation": 80, "test": 81}``.
  """
  total = sum(JSB_SPLIT_SIZES.values())
  validation = round(num_pieces * JSB_SPLIT_SIZES["validation"] / total)
  test = round(num_pieces * JSB_SPLIT_SIZES["test"] / total)
  return {"train": num_pieces - validation - test, "validation": validation, "test": test}


def split_pieces(names: Sequence[str], *, seed: int = 0) -> dict[str, list[str]]:
  """Assigns pieces to train / validation / test, fixed by name and seed.

  Args:
    names: distinct piece names, in any order.
    seed: seed of the shuffle.

  Returns:
    ``{"train": [...], "validation": [...], "test": [...]}``: the names
    sorted, shuffled by ``np.random.default_rng(seed).permutation``, then cut
    into the first ``split_sizes(n)["train"]``, the next ``["validation"]``
    and the last ``["test"]``; each list is in shuffled order.
  """
  if isinstance(names, str):
    raise TypeError(f"names must be a sequence of piece names, got the string {names!r}")
  ordered = sorted(names)
  if len(set(ordered)) != len(ordered):
    raise ValueError("names holds a piece twice")
  shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
  sizes = split_sizes(len(shuffled))
  cut = sizes["train"] + sizes["validation"]
  return {"train": shuffled[:sizes["train"]],
          "validation": shuffled[sizes["train"]:cut],
          "test": shuffled[cut:]}


def load_chorales(*, cache_dir: Optional[PathLike] = None,
                  directory: Optional[PathLike] = None,
                  processes: int = 2) -> dict[str, list[np.ndarray]]:
  """Train / validation / test piano rolls of the Bach chorales.

  Args:
    cache_dir: cache folder; defaults to ``packaged.default_cache_dir()``
      (``$SEQJAX_CACHE`` or ``~/.cache/seqjax``).
    directory: folder of chorale files; defaults to music21's corpus.
    processes: worker processes for the first, uncached parse (see
      ``load_chorale_rolls``).

  Returns:
    ``{"train": [...], "validation": [...], "test": [...]}``, lists of
    ``(T_i, 88)`` float32 rolls in the order of ``split_pieces`` applied to
    the names of ``load_chorale_rolls``. With music21 10.5.1: 243 train, 80
    validation and 81 test pieces (14,051, 4,342 and 4,549 time steps).
  """
  rolls = load_chorale_rolls(cache_dir=cache_dir, directory=directory,
                             processes=processes)
  return {split: [rolls[name] for name in names]
          for split, names in split_pieces(list(rolls)).items()}


def _frames(rolls: Union[np.ndarray, Sequence[np.ndarray]], name: str) -> np.ndarray:
  """All time steps of one roll or a list of rolls, as one ``(sum T_i, 88)`` array."""
  if isinstance(rolls, np.ndarray) and rolls.ndim == 2:
    rolls = [rolls]
  rolls = [np.asarray(roll, np.float64) for roll in rolls]
  for roll in rolls:
    if roll.ndim != 2 or roll.shape[1] != NUM_KEYS:
      raise ValueError(f"{name} must hold (T, {NUM_KEYS}) rolls, got shape {roll.shape}")
  frames = np.concatenate(rolls) if rolls else np.zeros((0, NUM_KEYS))
  if frames.shape[0] == 0:
    raise ValueError(f"{name} holds no time step")
  return frames


def marginal_nll(train_rolls: Union[np.ndarray, Sequence[np.ndarray]],
                 eval_rolls: Union[np.ndarray, Sequence[np.ndarray]],
                 eps: float = 1e-3) -> float:
  """NLL of the per-key marginal-frequency baseline, in nats per time step.

  The baseline plays each key independently at every step with the
  probability it has over the training set: ``p_k`` is the mean of key ``k``
  over all training time steps, clipped to ``[eps, 1 - eps]`` so that a key
  never seen in training does not cost infinitely much. The loss of a step
  ``x`` is the Bernoulli NLL summed over keys,
  ``-sum_k [x_k log p_k + (1 - x_k) log(1 - p_k)]``; the result is its mean
  over all evaluation time steps (so long pieces weigh more, as in the
  frame-level JSB figures). Any model worth training should beat it.

  Args:
    train_rolls: ``(T_i, 88)`` rolls (a list, or one array) to estimate ``p``.
    eval_rolls: ``(T_j, 88)`` rolls to score.
    eps: clipping of ``p``, in ``(0, 0.5)``.

  Returns:
    The mean NLL per time step, a Python float (computed in float64).
  """
  if not 0.0 < eps < 0.5:
    raise ValueError(f"eps must be in (0, 0.5), got {eps}")
  p = np.clip(_frames(train_rolls, "train_rolls").mean(axis=0), eps, 1.0 - eps)
  x = _frames(eval_rolls, "eval_rolls")
  nll = -(x * np.log(p) + (1.0 - x) * np.log1p(-p)).sum(axis=1)
  return float(nll.mean())


def pad_batch(rolls: Sequence[np.ndarray], length: Optional[int] = None
              ) -> tuple[np.ndarray, np.ndarray]:
  """Pads variable-length rolls with silence into one batch.

  Args:
    rolls: ``N`` arrays of shape ``(T_i, 88)``.
    length: the padded length ``T``; defaults to the longest ``T_i``.

  Returns:
    ``(x, mask)``: ``x`` of shape ``(N, T, 88)`` float32, roll ``i`` in
    ``x[i, :T_i]`` and zeros after; ``mask`` of shape ``(N, T)`` bool, True
    exactly on the real steps ``t < T_i``.

  Raises:
    ValueError: if ``rolls`` is empty, a roll is not ``(T_i, 88)``, or
      ``length`` is shorter than a roll (rolls are never cut silently).
  """
  rolls = [np.asarray(roll) for roll in rolls]
  if not rolls:
    raise ValueError("rolls is empty: there is nothing to batch")
  for roll in rolls:
    if roll.ndim != 2 or roll.shape[1] != NUM_KEYS:
      raise ValueError(f"rolls must be (T, {NUM_KEYS}) arrays, got shape {roll.shape}")
  longest = max(len(roll) for roll in rolls)
  if length is None:
    length = longest
  elif length < longest:
    raise ValueError(f"length={length} is shorter than the longest roll "
                     f"({longest} steps); split or drop long pieces first")
  x = np.zeros((len(rolls), length, NUM_KEYS), np.float32)
  mask = np.zeros((len(rolls), length), bool)
  for i, roll in enumerate(rolls):
    x[i, :len(roll)] = roll
    mask[i, :len(roll)] = True
  return x, mask


def load(*, cache_dir: Optional[PathLike] = None) -> dict[str, list[np.ndarray]]:
  """``load_chorales`` with the defaults: train / validation / test piano rolls."""
  return load_chorales(cache_dir=cache_dir)
