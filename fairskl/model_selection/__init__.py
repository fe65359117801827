"""Model selection: splits that keep patients or lesions whole (sklearn.model_selection style)."""

from fairskl.model_selection._split import GroupedValidSplit, train_val_test_split

__all__ = ["GroupedValidSplit", "train_val_test_split"]
