"""Data sets: synthetic skin-lesion images with sensitive attributes (sklearn.datasets style)."""

from fairskl.datasets._synthetic import make_skin_lesions

__all__ = ["make_skin_lesions"]
