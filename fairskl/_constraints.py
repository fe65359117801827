"""Parameter constraints shared by fairskl's public functions and estimators.

One rule per parameter, in scikit-learn's declarative style (:func:`sklearn.utils.
_param_validation.validate_params` for functions, ``_parameter_constraints`` for estimators):

- ``n_bootstrap``: 0 (no bootstrap: point values; where seeds are averaged, intervals from the
  seed spread alone) or an int >= 2 (one resample cannot give a spread).
- ``random_state``: scikit-learn's rule (None, an int or a ``RandomState``). Where a checkpoint
  must redraw the same rows on resume, an int is required by a separate check that names the
  checkpoint argument (a rule that involves two arguments).
- ``random_state`` of the networks (the estimators): None or an int >= 0, since it seeds torch,
  which takes no ``RandomState``.
- ``ci``: a level in (0, 1).
- ``verbose``: an int >= 0 or a bool.
"""

import numbers

from sklearn.utils._param_validation import Interval, Options, RealNotInt

N_BOOTSTRAP = [Interval(numbers.Integral, 2, None, closed="left"), Options(numbers.Integral, {0})]
RANDOM_STATE = ["random_state"]
SEED = [None, Interval(numbers.Integral, 0, None, closed="left")]
CI = [Interval(RealNotInt, 0, 1, closed="neither")]
VERBOSE = ["verbose"]
