"""fairskl._weights: weights names and local state_dicts, one resolution for the backbones and
the VGG19 of the perceptual loss (no download: only names are resolved)."""

import pytest
import torch
from torch import nn

from fairskl._weights import is_path, load_state_dict, read_state_dict, weights_member


def test_is_path_tells_a_file_from_a_weights_name(tmp_path):
    existing = tmp_path / "weights.pth"
    existing.write_bytes(b"")
    assert is_path(existing) and is_path(str(existing))
    assert is_path(str(tmp_path / "missing" / "weights.pth"))  # a mistyped path stays a path
    assert not any(is_path(name) for name in ("IMAGENET1K_V1", "DEFAULT", "pretrained", None))


def test_weights_member_resolves_torchvision_names():
    from torchvision.models import ResNet18_Weights, VGG19_Weights

    assert weights_member(ResNet18_Weights, "DEFAULT") is ResNet18_Weights.IMAGENET1K_V1
    assert weights_member(VGG19_Weights, "IMAGENET1K_V1") is VGG19_Weights.IMAGENET1K_V1
    assert weights_member(VGG19_Weights, "IMAGENET_V9") is None


def test_read_and_load_a_state_dict(tmp_path):
    torch.manual_seed(0)
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    torch.save(source.state_dict(), tmp_path / "linear.pth")
    load_state_dict(target, read_state_dict(tmp_path / "linear.pth"), "never raised")
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    wider = nn.Linear(4, 2)
    with pytest.raises(ValueError, match=r"(?s)^weights='w\.pth' is not a Linear's \(.*size "
                                         r"mismatch.*\)\. Save one\.$"):
        load_state_dict(wider, source.state_dict(), "weights='w.pth' is not a Linear's",
                        "Save one.")
    with pytest.raises(ValueError, match=r"(?s)is not a Linear's \(.*\)\.$"):
        load_state_dict(wider, source.state_dict(), "weights='w.pth' is not a Linear's")
