"""Data sets: synthetic skin lesions and loaders of the real data sets (sklearn.datasets style).

The real data sets are not distributed with fairskl: download them from their owners (see the
user guide, :ref:`datasets`) into :func:`get_data_home`.
"""

from fairskl.datasets._base import get_data_home
from fairskl.datasets._files import ImageFiles
from fairskl.datasets._fitzpatrick17k import load_fitzpatrick17k
from fairskl.datasets._ham10000 import load_ham10000
from fairskl.datasets._harvard_gf import load_harvard_glaucoma
from fairskl.datasets._pad_ufes20 import load_pad_ufes20
from fairskl.datasets._synthetic import make_skin_conditions, make_skin_lesions

__all__ = [
    "ImageFiles",
    "get_data_home",
    "load_fitzpatrick17k",
    "load_ham10000",
    "load_harvard_glaucoma",
    "load_pad_ufes20",
    "make_skin_conditions",
    "make_skin_lesions",
]
