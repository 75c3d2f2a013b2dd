"""Cross-validated grid search: is the chosen setting good on files it was not chosen on?

A grid searched on the whole corpus and scored on the same corpus measures how well the grid
memorises it. Here the files are split into folds (``--cv categories``: leave one category out;
``--cv K``: K seeded folds of files); for each fold, the setting is chosen on the other folds
only and scored on the held-out one; the held-out files' scores, each under its own fold's choice,
are summed and normalised as one corpus. The gap between that and the in-sample score is the
evidence of how well a choice generalises.

No detection is repeated: a detector sees one file at a time, so every grid setting's per-file
scores (from the one grid run) already hold all a fold needs; choosing is arithmetic on them.
A setting is chosen by the profile being estimated (the standard profile's cross-validated score
chooses by standard on the training folds, low_fp's by low_fp), ties to fewer detections, then
to grid order, as the in-sample grid ranks.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .corpus import Corpus
from .runner import Evaluation
from .scoring import PROFILES, FileScore, GroupScore, aggregate


class CrossValidationError(ValueError):
    """The folds cannot be made (too few files or categories for the request)."""


@dataclass(frozen=True)
class Fold:
    name: str
    held_out: tuple[int, ...]  # indices into the corpus' series


def parse_cv(text: str) -> str | int:
    """``categories`` or a number of folds (2 or more)."""
    if text == "categories":
        return text
    try:
        folds = int(text)
    except ValueError:
        raise CrossValidationError(
            f"--cv must be 'categories' or a number of folds, got {text!r}"
        ) from None
    if folds < 2:
        raise CrossValidationError(f"--cv needs at least 2 folds, got {folds}")
    return folds


def make_folds(corpus: Corpus, cv: str | int, seed: int = 0) -> list[Fold]:
    """Leave-one-category-out folds, or ``cv`` folds of files shuffled with ``seed``."""
    count = len(corpus.series)
    if cv == "categories":
        categories = corpus.categories()
        if len(categories) < 2:
            raise CrossValidationError(
                f"--cv categories needs files in 2 or more categories; {corpus.root} has "
                f"{len(categories)} ({', '.join(categories)})"
            )
        return [
            Fold(
                category,
                tuple(i for i, s in enumerate(corpus.series) if s.category == category),
            )
            for category in categories
        ]
    assert isinstance(cv, int)
    if cv > count:
        raise CrossValidationError(f"--cv {cv} needs at least {cv} files; the corpus has {count}")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return [Fold(f"fold {index + 1}/{cv}", tuple(sorted(order[index::cv]))) for index in range(cv)]


def _choose(
    evaluations: Sequence[Evaluation], files: Sequence[int] | range, profile: str
) -> tuple[int, GroupScore]:
    """The index of the best setting on ``files`` by ``profile`` and its score there."""
    best: tuple[tuple[float, int, int], int, GroupScore] | None = None
    for index, evaluation in enumerate(evaluations):
        group = aggregate("train", [evaluation.files[i] for i in files])
        score = group.nab[profile]
        key = (score if score is not None else float("-inf"), -group.detections, -index)
        if best is None or key > best[0]:
            best = (key, index, group)
    assert best is not None
    return best[1], best[2]


@dataclass(frozen=True)
class FoldChoice:
    fold: str
    files: int
    params: dict[str, Any]
    train: dict[str, float | None]  # the chosen setting's NAB scores on the training folds
    held_out: dict[str, float | None]  # ...and on the held-out fold


@dataclass(frozen=True)
class CrossValidated:
    """Per profile: the held-out files' score (each under its fold's choice) and the choices."""

    scheme: str
    seed: int
    overall: dict[str, GroupScore]  # profile -> held-out files aggregated as one corpus
    choices: dict[str, tuple[FoldChoice, ...]]  # profile -> one choice per fold
    #: profile -> the setting chosen on every file and its score there (the usual grid answer)
    in_sample: dict[str, tuple[dict[str, Any], GroupScore]]

    def nab(self) -> dict[str, float | None]:
        """The cross-validated NAB score of each profile (chosen by that profile)."""
        return {name: group.nab[name] for name, group in self.overall.items()}

    def in_sample_nab(self) -> dict[str, float | None]:
        return {name: group.nab[name] for name, (_, group) in self.in_sample.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "seed": self.seed,
            "nab": self.nab(),
            "in_sample_nab": self.in_sample_nab(),
            "profiles": {
                name: {
                    "score": group.as_dict(),
                    "in_sample_params": self.in_sample[name][0],
                    "folds": [choice.__dict__ for choice in self.choices[name]],
                }
                for name, group in self.overall.items()
            },
        }


def cross_validate(
    evaluations: Sequence[Evaluation], folds: Sequence[Fold], scheme: str, seed: int = 0
) -> CrossValidated:
    """Choose on the training folds, score on the held-out one, for every profile."""
    if not evaluations:
        raise CrossValidationError("nothing to cross-validate: the grid is empty")
    count = len(evaluations[0].files)
    overall: dict[str, GroupScore] = {}
    choices: dict[str, tuple[FoldChoice, ...]] = {}
    in_sample: dict[str, tuple[dict[str, Any], GroupScore]] = {}
    for profile in PROFILES:
        index, whole = _choose(evaluations, range(count), profile.name)
        in_sample[profile.name] = (evaluations[index].params, whole)
        held: list[FileScore] = []
        made: list[FoldChoice] = []
        for fold in folds:
            outside = set(fold.held_out)
            train = [i for i in range(count) if i not in outside]
            index, train_score = _choose(evaluations, train, profile.name)
            chosen = evaluations[index]
            scores = [chosen.files[i] for i in fold.held_out]
            held.extend(scores)
            made.append(
                FoldChoice(
                    fold=fold.name,
                    files=len(fold.held_out),
                    params=chosen.params,
                    train=train_score.nab,
                    held_out=aggregate(fold.name, scores).nab,
                )
            )
        overall[profile.name] = aggregate("cross-validated", held)
        choices[profile.name] = tuple(made)
    return CrossValidated(scheme, seed, overall, choices, in_sample)
