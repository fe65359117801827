"""fairskl._docstrings.fill_doc: the shared blocks of the estimators' docstrings."""

import pytest

import fairskl
from fairskl._base import SHARED_ATTRIBUTES, SHARED_PARAMETERS
from fairskl._docstrings import fill_doc
from fairskl.inspection import NeuronIncidenceDisplay, neuron_incidence

CLASSIFIERS = [
    fairskl.NIRClassifier, fairskl.CVaRDROClassifier, fairskl.GroupDROClassifier,
    fairskl.JTTClassifier, fairskl.SpectralDecouplingClassifier,
    fairskl.GroupBalancedClassifier, fairskl.DFRClassifier, fairskl.LfFClassifier,
]


def test_fill_doc_as_a_decorator_and_as_a_call():
    @fill_doc(block="    x : int\n        A number.\n")
    def f():
        """Parameters
    ----------
%(block)s"""

    assert f.__doc__ == "Parameters\n    ----------\n    x : int\n        A number.\n"

    class Documented:
        """%(a)s and %(b)s; %(a)s again, 80-100% of it, {a} as it is."""

    assert fill_doc(Documented, a="A", b="B") is Documented
    assert Documented.__doc__ == "A and B; A again, 80-100% of it, {a} as it is."


def test_fill_doc_refuses_a_placeholder_the_docstring_lacks():
    def f():
        """Nothing to fill."""

    with pytest.raises(ValueError, match=r"f has no %\(shared\)s to fill"):
        fill_doc(f, shared="text")


@pytest.mark.parametrize("documented", CLASSIFIERS + [neuron_incidence, NeuronIncidenceDisplay],
                         ids=lambda obj: obj.__name__)
def test_public_docstrings_are_filled(documented):
    doc = documented.__doc__
    assert "%(" not in doc and "{example}" not in doc
    if documented in CLASSIFIERS:
        assert SHARED_PARAMETERS in doc and SHARED_ATTRIBUTES in doc
    else:
        assert ">>> clf = Logistic().fit(X, y)" in doc
