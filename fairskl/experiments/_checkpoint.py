"""The checkpoint scheme of the studies: a folder whose ``config.json`` says which computation it
holds (another one is refused, never mixed in), and whose pieces are written atomically.
``compare_methods`` keeps its fold and refit pieces here, and ``reproduce_nir`` its λ study;
``representation_study`` checks its folder's config here and keeps each cell as CSV files
(readable without fairskl), and ``reproduce_nir`` keeps its refitted networks under
``models/`` (outputs a user loads), stamped with their thresholds the same way.

Why not :class:`joblib.Memory`: it keys each call on its arguments, so a changed configuration
silently computes next to the old results instead of being refused (the user-facing
``--resume`` error), and it would hash the whole training set again for every fold and seed; a
study hashes its data once, into ``config.json``.
"""

import json
import numbers
from pathlib import Path

import joblib
from sklearn.utils import check_random_state

from fairskl._io import write_joblib, write_text


class Checkpoints:
    """The finished pieces of one computation, saved in ``folder``.

    Parameters
    ----------
    folder : str or path-like
        Created if missing.
    config : dict
        What the computation is (hashes of its data, its settings); JSON-serialisable (a value
        that is not is written as its ``repr``). A folder holding another config raises a
        ValueError naming the keys that differ.
    argument : str, default="checkpoint_dir"
        The argument the user passed ``folder`` as, for the error message.
    """

    def __init__(self, folder, config, *, argument="checkpoint_dir"):
        self.folder = Path(folder)
        self.config = json.loads(json.dumps(config, default=repr))
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "config.json"
        if path.exists():
            changed = changed_settings(path, self.config)
            if changed:
                raise ValueError(
                    f"{argument} {str(self.folder)!r} holds a study with other {changed}. Use "
                    f"a new {argument}, or delete this one to start over."
                )
        else:
            write_text(path, json.dumps(self.config, indent=1))

    def load(self, name, stamp=None):
        """The piece ``name`` saved with ``stamp`` (any value with ``==``), or None when it is
        missing or was saved with another stamp (e.g. other thresholds: to be redone)."""
        path = self.folder / f"{name}.joblib"
        if not path.exists():
            return None
        saved = joblib.load(path)
        if not (isinstance(saved, dict) and saved.keys() == {"stamp", "value"}):
            # an older fairskl saved bare pieces: still valid without a stamp (the folder's
            # config.json matched); a stamped one is redone
            return saved if stamp is None else None
        return saved["value"] if saved["stamp"] == stamp else None

    def save(self, name, value, stamp=None):
        """Save ``value`` as the piece ``name`` (atomically) and return it."""
        write_joblib(self.folder / f"{name}.joblib", {"stamp": stamp, "value": value})
        return value


def changed_settings(path, config):
    """The sorted keys whose values differ between the JSON file ``path`` and ``config`` (a
    dict as JSON reads it back)."""
    saved = json.loads(Path(path).read_text(encoding="utf-8"))
    return sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))


def checkpoint_seed(random_state, checkpoint_dir):
    """The int seed of a study's draws; a resumable run (``checkpoint_dir``) needs it given."""
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    if checkpoint_dir is not None:
        raise ValueError(f"checkpoint_dir needs an int random_state so that a resumed run draws "
                         f"the same samples, got random_state={random_state!r}.")
    return int(check_random_state(random_state).randint(2**31 - 1))


def describe(estimator):
    """The estimator's class and every parameter (``repr`` elides long ones), the same in
    every process: an object whose ``repr`` is its address (a skorch callback) is named by
    its class and the hash of its state."""
    params = json.dumps(estimator.get_params(deep=False), default=_stable_repr, sort_keys=True)
    return f"{type(estimator).__name__}({params})"


def hash_frame(frame):
    """A hash of a DataFrame's columns and values (as text: the same across dtypes' pickles)."""
    return joblib.hash([list(frame.columns), frame.astype(str).to_numpy()])


def _stable_repr(value):
    text = repr(value)
    if " at 0x" in text:
        return f"{type(value).__name__}#{joblib.hash(value)}"
    return text
