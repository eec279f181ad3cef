"""Feature families: what is computed from one stretch of audio.

A family is a small frozen object with

- ``name``: how feature files, models and the command line call it;
- ``params``: its parameters dataclass (recorded in every file);
- ``sample_rate``: the canonical rate, in Hz, its signals are resampled to;
- ``compute(signal, path=...)``: a mono float64 signal at that rate to a
  dict of arrays (one row's worth: ``{"means": (d,), "covs": (d, d)}``;
  ``{"table": (57,), "length": ()}`` for the table family), keys distinct
  between families so that several can be computed from one span;
- ``columns()``: the names of the columns of its vector form.

The families: :class:`GaussianFamily` (``gaussian``) and
:class:`~knn_genre.features.table.TableFamily` (``table``, GTZAN's
published columns).

:func:`knn_genre.features.analysis.analyse_file` runs a family over a whole
file, its segments or its windows. A new family is one class here (and its
entry in :data:`FAMILIES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FeatureError
from .gaussian import gaussian
from .mfcc import mfcc_frames
from .params import MFCCParams
from .table import TableFamily

__all__ = ["GaussianFamily", "TableFamily", "FAMILIES", "track_gaussian"]


def track_gaussian(signal: np.ndarray, params: MFCCParams = MFCCParams(), *, path: str = "<signal>"):
    """Mean and covariance of the MFCC frames of a signal.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        Mono float samples in [-1, 1] at ``params.sample_rate``.
    params : MFCCParams
    path : str
        Named in the error message.

    Returns
    -------
    mean : ndarray of shape (numcep,)
    cov : ndarray of shape (numcep, numcep)

    Raises
    ------
    FeatureError
        If the signal is too short for a covariance or gives non-finite MFCCs.
    """
    frames = mfcc_frames(signal, params)
    if len(frames) < params.min_frames:
        seconds = len(signal) / params.sample_rate
        raise FeatureError(
            path,
            f"too short: {seconds:.3f} s gives {len(frames)} MFCC frame(s), "
            f"a {params.numcep}-dimensional covariance needs at least {params.min_frames}",
        )
    mean, cov = gaussian(frames)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise FeatureError(path, "MFCCs are not finite")
    return mean, cov


@dataclass(frozen=True)
class GaussianFamily:
    """One Gaussian (mean, full covariance) over the MFCC frames of a stretch.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.families import GaussianFamily
    >>> family = GaussianFamily()
    >>> rows = family.compute(np.sin(np.arange(22050) * 0.05) + 0.01 * np.cos(np.arange(22050) * 1.3))
    >>> rows["means"].shape, rows["covs"].shape, len(family.columns())
    ((13,), (13, 13), 104)
    """

    params: MFCCParams = field(default_factory=MFCCParams)
    name = "gaussian"

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    def compute(self, signal: np.ndarray, *, path: str = "<signal>") -> dict:
        mean, cov = track_gaussian(signal, self.params, path=path)
        return {"means": mean, "covs": cov}

    def columns(self) -> list[str]:
        d = self.params.numcep
        iu = np.triu_indices(d)
        return [f"mean_{i}" for i in range(d)] + [f"cov_{i}_{j}" for i, j in zip(*iu)]


#: Family class by name.
FAMILIES = {GaussianFamily.name: GaussianFamily, TableFamily.name: TableFamily}
