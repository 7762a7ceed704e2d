"""Thresholds that are a number or what ``eval`` measured: the one resolver of ``quality.min_score`` and
``persons.threshold``.

``streamfiqa eval`` writes ``OUT/calibration.json``: per scorer and FR model, the quality ``threshold`` whose discard
reaches the best FNMR within the calibration budget, and the recogniser's own ``fr_threshold`` at the evaluation's
FMR (the same under every scorer). A config key that takes a threshold takes a number or such a file.
"""
from __future__ import annotations

import json
from pathlib import Path

from streamfiqa.config import ConfigError

#: Cosine at FMR 1e-3 of each embedding model on the ``train`` half of ``../shared`` celeba_ids (149 identities,
#: 1,618 photos, 50,000 impostor pairs): ``streamfiqa eval --split train --protocol clean --scorer fiqa_fast
#: --fr facenet --fr student --fr mobilefacenet``. The README gives their error rates on the held-out half.
DEFAULT_FR_THRESHOLDS = {"facenet": 0.578, "student:fiqa_fast": 0.456, "mobilefacenet": 0.359}


def _table(path: str | Path) -> dict:
    """scorer → FR model → entry, from an ``eval`` calibration file (or a bare table)."""
    data = json.loads(Path(path).read_text())
    return data.get("calibration", data)


def quality_threshold(path: str | Path, scorer: str, fr: str | None = None) -> float:
    """The threshold an ``eval`` calibration file gives ``scorer`` (with ``fr``, or its only / first FR).

    Raises:
        ValueError: the file has no entry for the scorer (the message lists those it has).
    """
    table = _table(path)
    if scorer not in table:
        raise ValueError(f"{path}: no calibration for scorer {scorer!r}; it has {', '.join(table) or 'none'}")
    per_fr = table[scorer]
    if fr is None:
        fr = next(iter(per_fr))
    if fr not in per_fr:
        raise ValueError(f"{path}: no calibration of {scorer!r} with FR {fr!r}; it has {', '.join(per_fr)}")
    return float(per_fr[fr]["threshold"])


def fr_threshold(path: str | Path, fr: str) -> float:
    """The recogniser threshold at the file's FMR (``fr_threshold``) that an ``eval`` calibration file
    measured for FR model ``fr`` (the same under every scorer).

    Raises:
        ValueError: the file has no entry for ``fr`` (the message lists those it has).
    """
    table = _table(path)
    have = sorted({name for per_fr in table.values() for name in per_fr})
    for per_fr in table.values():
        if fr in per_fr and "fr_threshold" in per_fr[fr]:
            return float(per_fr[fr]["fr_threshold"])
    raise ValueError(f"{path}: no FR threshold for {fr!r}; it has {', '.join(have) or 'none'}")


def resolve(key: str, value: str | float | None, from_file, what: str = "a number",
            bounds: tuple[float, float] | None = None) -> float | None:
    """A config value that is a number or the path of an ``eval`` calibration file.

    Args:
        key: the dotted config key (for messages).
        value: the configured value; None stays None.
        from_file: reads the threshold out of a calibration file (raises ValueError/KeyError when it has none).
        what: how a number is described in messages ("a cosine").
        bounds: the closed range a number must lie in.

    Raises:
        ConfigError: neither a number (in range) nor a readable calibration file with the entry asked for.
    """
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        if not Path(str(value)).is_file():
            raise ConfigError(f"config key {key!r}: expected {what} or a calibration.json written by 'eval', found "
                              f"{value!r}") from None
        try:
            return from_file(str(value))
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"config key {key!r}: {exc}") from None
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        raise ConfigError(f"config key {key!r}: expected {what} in [{bounds[0]:g}, {bounds[1]:g}], found {number}")
    return number


def min_score(quality) -> float | None:
    """``quality.min_score``: a number, or the threshold a calibration file gives the fast scorer (for
    ``quality.min_score_fr``, else its first FR); None = no gate."""
    return resolve("quality.min_score", quality.min_score,
                   lambda p: quality_threshold(p, quality.scorer or "tier0", quality.min_score_fr))


def person_threshold(persons, fr: str) -> float:
    """``persons.threshold``: a cosine, a calibration file (the ``fr_threshold`` it measured for ``persons.fr``,
    else ``fr``), or None for the built-in threshold of ``fr`` (:data:`DEFAULT_FR_THRESHOLDS`).

    Args:
        persons: the ``persons`` section.
        fr: the model that embeds the published crops (``publish.embedding_fr``, or the tracker's).

    Raises:
        ConfigError: as :func:`resolve`, or no built-in threshold for ``fr``.
    """
    if persons.threshold is None:
        if fr not in DEFAULT_FR_THRESHOLDS:
            raise ConfigError(f"config key 'persons.threshold': no built-in threshold for embeddings of {fr!r} "
                              f"(built in: {', '.join(DEFAULT_FR_THRESHOLDS)}); give a cosine or the calibration.json "
                              f"of 'eval --fr {fr.split(':')[0]}'")
        return DEFAULT_FR_THRESHOLDS[fr]
    return resolve("persons.threshold", persons.threshold,
                   lambda p: fr_threshold(p, persons.fr or fr.split(":")[0]), "a cosine", (-1.0, 1.0))
