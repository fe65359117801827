"""Synthetic dermoscopy-like images whose label and sensitive attributes leave visible traces."""

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit
from scipy.stats import norm
from sklearn.utils import Bunch, check_random_state
from threadpoolctl import threadpool_limits

from fairskl.datasets._base import AGE_CUT, check_number

__all__ = ["make_skin_conditions", "make_skin_lesions"]

# ---------------------------------------------------------------------------------------------
# Constants of the generative process. DESCR is formatted from these, so that the documentation
# cannot drift from the code. Lengths are fractions of the image side H unless stated otherwise.
# ---------------------------------------------------------------------------------------------
_P_MALE = 0.5
_AGE_MIN, _AGE_MAX, _AGE_CUT = 20, 89, AGE_CUT  # age ~ U{20..89}; "60+" if age >= 60
_P_OLD = (_AGE_MAX - _AGE_CUT + 1) / (_AGE_MAX - _AGE_MIN + 1)
_SKIN_TYPE_P = np.array([0.10, 0.25, 0.25, 0.20, 0.10, 0.10])  # Fitzpatrick I..VI
_SKIN_RGB = np.array(
    [
        [0.96, 0.85, 0.78],  # I
        [0.92, 0.77, 0.66],  # II
        [0.83, 0.65, 0.52],  # III
        [0.68, 0.50, 0.38],  # IV
        [0.50, 0.35, 0.25],  # V
        [0.32, 0.22, 0.16],  # VI
    ]
)
_SKIN_JITTER = 0.04  # per-channel log-normal jitter of the skin colour
_SHADING = 0.08  # amplitude of a linear illumination gradient
_NOISE_HALF_WIDTH = 0.025  # additive uniform pixel noise U(-w, w)

_IRR_MEAN = (-1.3, 0.7)  # latent g ~ N(mean[y], 1); irregularity t = expit(g)
_RADIUS = (0.14, 0.26)  # lesion semi-major axis R0 ~ U(.), times H
_CENTER_SD = 0.05  # lesion centre offset ~ N(0, sd * H), clipped to +-2 sd
_ASPECT = (0.75, 1.0)  # minor / major axis ratio ~ U(.)
_HARMONICS = np.arange(2, 9)  # border harmonics k = 2..8
_BORDER_AMP = 0.25  # RMS relative radius perturbation is _BORDER_AMP * t
_BORDER_MIN = 0.3  # the relative radius is clipped below at this value
_EDGE = 0.01  # width of the soft border (logistic scale), times H

# Beer-Lambert pigments: the lesion multiplies the skin colour by exp(-sum_p density_p * k_p)
_K_BROWN = np.array([0.60, 0.87, 1.02])  # RGB absorbance of epidermal melanin (brown)
_K_BLUE = np.array([1.00, 0.80, 0.55])  # dermal melanin seen through the skin (blue-grey)
_K_RED = np.array([0.10, 0.70, 0.60])  # haemoglobin (red)
_DENSITY_SD = 0.15  # brown density d = exp(N(0, sd))
_BROWN_AMP, _BLUE_AMP, _RED_AMP = 0.5, 0.9, 0.7  # variegation amplitudes, each times t
_N_WAVES = 3  # plane waves per variegation field
_WAVE_FREQ = (0.5, 1.5)  # cycles per lesion radius R0

# at artefact_strength s, P(hair) = 0.5 -+ s * 0.4 for female / male (the values below at s = 1)
_P_HAIR_FEMALE, _P_HAIR_MALE = 0.1, 0.9
_HAIR_MEAN_EXTRA = 2.0  # n_hairs = 2 + Poisson(2), at most _HAIR_MAX
_HAIR_MIN, _HAIR_MAX = 2, 8
_HAIR_LENGTH = (0.4, 0.9)  # times H
_HAIR_CURVATURE_SD = 0.6  # curvature kappa ~ N(0, sd / H) (offset kappa * u**2 along the hair)
_HAIR_WIDTH = 0.5  # Gaussian profile s.d. in pixels at H = 64, scaled with H ...
_HAIR_WIDTH_MIN = 0.35  # ... but at least this many pixels
_HAIR_OPACITY = 0.6  # translucent: many visible hairs that hide little of the lesion
_HAIR_RGB = np.array([0.10, 0.07, 0.05])

_P_VIGNETTE_YOUNG, _P_VIGNETTE_OLD = 0.1, 0.9  # <60, 60+ (at artefact_strength 1, as hair)
_VIGNETTE_RADIUS = (0.46, 0.56)  # radius of the dermoscope's circular field ~ U(.), times H
_VIGNETTE_SD = 0.02  # offset of its centre ~ N(0, sd * H) per axis
_VIGNETTE_EDGE = 0.02  # logistic scale of its edge, times H
_VIGNETTE_DARKNESS = 0.95  # fraction of light removed outside the field

_CHUNK = 256  # images rendered at once

# AUC of the latent irregularity (equal-variance normals): the best a classifier of the lesion
# alone can do, as the lesion depends on the label only through the irregularity
_IRR_AUC = float(norm.cdf((_IRR_MEAN[1] - _IRR_MEAN[0]) / np.sqrt(2.0)))

DESCR = f"""\
.. _skin_lesions_dataset:

Synthetic skin lesions
----------------------

Dermoscopy-like RGB images of a single pigmented lesion on skin, with a benign (0) / malignant (1)
label that is visible in the lesion and sensitive attributes (sex, age, skin type) that leave
visible traces in the image. Everything below is drawn independently per image; H is the image
side in pixels, expit(x) = 1 / (1 + exp(-x)), U(a, b) is uniform, N(m, s) normal with s.d. s.
Lengths are fractions of H, so a random_state gives the same labels, attributes and lesion
parameters at every image_size.

**Sensitive attributes.** sex = "male" with probability {_P_MALE}, else "female";
age ~ U{{{_AGE_MIN}, ..., {_AGE_MAX}}} (integer years), age_group = "60+" if age >= {_AGE_CUT}
else "<60" (P(60+) = {_P_OLD:.4f}); skin_type (Fitzpatrick I-VI, 1..6) with probabilities
{_SKIN_TYPE_P.tolist()}, independent of everything else.

**Label.** With z_sex = +1/2 (male) or -1/2 (female) and z_age = +1/2 (60+) or -1/2 (<60),
logit P(y = 1 | sex, age) = b0 + bias * (z_sex + z_age). b0 is solved (scipy.optimize.brentq)
so that the population prevalence, averaged over the distribution of sex and age_group above,
equals ``prevalence``. ``bias`` is the log odds ratio of malignancy between male and female
within an age group (and between 60+ and <60 within a sex); bias = 0 makes the label independent
of the groups. The skin type is never associated with the label.

**Lesion (carries the label).** A latent g ~ N({_IRR_MEAN[0]}, 1) if benign, N({_IRR_MEAN[1]}, 1)
if malignant, gives the irregularity t = expit(g) in (0, 1). The two distributions overlap: t
alone separates the classes with AUC Phi({_IRR_MEAN[1] - _IRR_MEAN[0]:.1f} / sqrt(2)) =
{_IRR_AUC:.3f}, the best any classifier of the lesion can do. Semi-major axis R0 ~ U({_RADIUS[0]},
{_RADIUS[1]}) * H; centre = image centre + N(0, {_CENTER_SD} * H) per axis, clipped to
+-{2 * _CENTER_SD} * H; an ellipse of axis ratio ~ U({_ASPECT[0]}, {_ASPECT[1]}) at an orientation
~ U(0, pi). Its border in polar coordinates (r, theta) around the centre is the ellipse radius
times max({_BORDER_MIN}, 1 + {_BORDER_AMP} * t * S(theta)), where S(theta) = sum_k c_k cos(k theta
+ phi_k) / sqrt(sum_k c_k^2 / 2), k = {_HARMONICS[0]}..{_HARMONICS[-1]}, c_k ~ U(0, 1) / sqrt(k),
phi_k ~ U(0, 2 pi) (S has unit RMS over theta): benign lesions are nearly round and smooth,
malignant ones irregular. The lesion mask is expit((border(theta) - r) / ({_EDGE} * H)), the border
evaluated at the nearest of 8 H equally spaced angles.

**Lesion colour.** The skin colour is multiplied by the transmittance of the lesion's three
pigments (Beer-Lambert, per RGB channel) m(x) = exp(-mask(x) * (D_brown(x) k_brown + D_blue(x)
k_blue + D_red(x) k_red)), with the RGB absorbances k_brown = {_K_BROWN.tolist()} (epidermal
melanin), k_blue = {_K_BLUE.tolist()} (dermal melanin, blue-grey) and k_red =
{_K_RED.tolist()} (haemoglobin), and the densities D_brown = d * max(0, 1 + {_BROWN_AMP} t
v1(x)), D_blue = {_BLUE_AMP} t max(0, v2(x)) and D_red = {_RED_AMP} t max(0, -v2(x)), where
d = exp(N(0, {_DENSITY_SD})) and v1, v2 are two variegation fields, each a sum of {_N_WAVES} plane
waves cos(2 pi f . x / R0 + phi) / sqrt({_N_WAVES} / 2) with |f| ~ U{_WAVE_FREQ} cycles per R0, a
direction ~ U(0, 2 pi) and phi ~ U(0, 2 pi). Benign lesions are nearly uniform brown, malignant
ones variegated (dark brown, blue-grey and red areas). As the lesion multiplies the skin colour,
lesions on dark skin have a lower contrast, as in reality.

**Skin (shows skin_type).** Background colour: the Fitzpatrick palette
{_SKIN_RGB.tolist()}
(types I..VI, RGB in [0, 1]) times exp(N(0, {_SKIN_JITTER})) per channel, times
1 + {_SHADING} * (a x + b y), a linear illumination gradient ((a, b) a random unit vector, x and
y in [-1, 1] across the image).

**Hair (shows sex).** With probability 0.5 + s ({_P_HAIR_MALE} - 0.5) for male and
0.5 + s ({_P_HAIR_FEMALE} - 0.5) for female, where s is ``artefact_strength`` (default 1:
{_P_HAIR_MALE} and {_P_HAIR_FEMALE}; 0: 0.5 for both, so that hair shows nothing of sex), the
image has n = min({_HAIR_MAX}, {_HAIR_MIN} + Poisson({_HAIR_MEAN_EXTRA})) hairs. Each hair is
a thin dark curve centred on a point ~ U(0, H)^2 (pixel coordinates), at an angle ~ U(0, pi),
of length ~ U({_HAIR_LENGTH[0]}, {_HAIR_LENGTH[1]}) * H, bent by an offset kappa * u^2 at the
distance u along it, with kappa ~ N(0, {_HAIR_CURVATURE_SD} / H); its profile across is a
Gaussian of s.d. max({_HAIR_WIDTH_MIN}, {_HAIR_WIDTH} * H / 64) pixels. Where hairs cross, the
larger profile counts. The hairs are drawn over the skin and the lesion with opacity
{_HAIR_OPACITY} (times the profile) in the colour {_HAIR_RGB.tolist()}.

**Vignette (shows age_group).** With probability 0.5 + s ({_P_VIGNETTE_OLD} - 0.5) for 60+ and
0.5 + s ({_P_VIGNETTE_YOUNG} - 0.5) for <60 (s = ``artefact_strength`` as for hair), the
corners are darkened by a dermoscope's circular field of view: the image is multiplied by
1 - {_VIGNETTE_DARKNESS} * expit((r - rho) / ({_VIGNETTE_EDGE} * H)), with r the distance to a
centre offset by N(0, {_VIGNETTE_SD} * H) per axis and rho ~
U({_VIGNETTE_RADIUS[0]}, {_VIGNETTE_RADIUS[1]}) * H.

**Noise.** Additive U(-{_NOISE_HALF_WIDTH}, {_NOISE_HALF_WIDTH}) per pixel and channel (quantised
to 256 levels); the image is clipped to [0, 1].

**Determinism.** A random_state fixes the labels, the attributes and every parameter above on any
machine; the pixels are rendered in float32 with NumPy's vectorised exp/sin/cos, so they are
bit-identical on one machine but may differ in the last bits between CPUs.

A classifier trained on these images learns the lesion but, when bias > 0, also the hair and
vignette shortcuts, which carry the group prior of malignancy: its true and false positive rates
then differ between the groups, more so the larger the bias.

**Scenarios.** ``bias`` sets only the label's dependence on the groups; ``artefact_strength``
how strongly the artefacts follow the groups. Two held-out designs follow from ``bias``.
*Default*: train and test sets drawn with the same bias (malignancy more frequent for male and
60+ patients, as in HAM10000), so part of a gap reflects a real difference in prevalence.
*Spurious shortcut*: train with bias > 0, test on a set drawn with bias = 0 (another
random_state): in training the hair and vignette artefacts correlate with the label through
the groups, in the test set they carry no information about it, so any TPR or FPR gap between
the groups is caused by the shortcut. ``fairskl reproduce nir`` audits both. Two *null
controls* follow from the pair: ``bias=0`` in training and test (the artefacts follow the
groups but carry no label information anywhere: no method should move a gap), and
``artefact_strength=0`` with ``bias > 0`` (a real difference in prevalence, but no visible
trace of the groups to take as a shortcut; ``fairskl reproduce nir --set bias=0`` and ``--set
artefact_strength=0`` run them).

:Number of classes: 2 (0 = "benign", 1 = "malignant")
:Images: float32, shape (n_samples, 3, H, H), values in [0, 1]
:Sensitive features: sex, age, age_group, skin_type
:Latent parameters (frame): irregularity t, lesion_radius R0 / H, center_x and center_y
    (pixels), aspect_ratio, orientation (radians), pigment_density d, has_hair, n_hairs,
    has_vignette, p_malignant = P(y = 1 | sex, age)
"""


def _check_params(n_samples, image_size, bias, prevalence, artefact_strength=1.0):
    check_number("n_samples", n_samples, valid=lambda v: v >= 1, integer=True,
                 expected="an integer >= 1",
                 advice=". Pass the number of images to generate, e.g. n_samples=1000.")
    check_number("image_size", image_size, valid=lambda v: v >= 16, integer=True,
                 expected="an integer >= 16",
                 advice=". Pass the side of the square images in pixels, e.g. image_size=64.")
    check_number("bias", bias, valid=lambda v: np.isfinite(v) and v >= 0,
                 expected="a finite number >= 0",
                 advice=". Pass 0 for a label independent of sex and age, or a positive log odds "
                        "ratio, e.g. bias=2.0.")
    check_number("prevalence", prevalence, valid=lambda v: 0 < v < 1,
                 expected="a number strictly between 0 and 1",
                 advice=". Pass the fraction of malignant lesions, e.g. prevalence=0.3.")
    check_number("artefact_strength", artefact_strength, valid=lambda v: 0 <= v <= 1,
                 expected="a number in [0, 1]",
                 advice=", e.g. artefact_strength=1.0 for hair and vignette rates of 0.9 vs 0.1 "
                        "between the groups, 0.0 for 0.5 in both.")


def _solve_intercept(bias, prevalence):
    """Return b0 such that E[expit(b0 + bias * (z_sex + z_age))] = prevalence."""
    p_sum = {  # distribution of z_sex + z_age
        1.0: _P_MALE * _P_OLD,
        0.0: _P_MALE * (1 - _P_OLD) + (1 - _P_MALE) * _P_OLD,
        -1.0: (1 - _P_MALE) * (1 - _P_OLD),
    }

    def excess(b0):
        return sum(p * expit(b0 + bias * s) for s, p in p_sum.items()) - prevalence

    center = logit(prevalence)
    if bias == 0:
        return float(center)
    return float(brentq(excess, center - bias - 1.0, center + bias + 1.0, xtol=1e-12))


def _draw_parameters(n, image_size, bias, prevalence, rng, artefact_strength=1.0):
    """Draw every per-image parameter up front (so rendering is a pure function of them)."""
    H = image_size
    p = {}
    male = rng.uniform(size=n) < _P_MALE
    age = rng.randint(_AGE_MIN, _AGE_MAX + 1, size=n)
    old = age >= _AGE_CUT
    skin_type = rng.choice(np.arange(1, 7), size=n, p=_SKIN_TYPE_P)
    b0 = _solve_intercept(bias, prevalence)
    p_malignant = expit(b0 + bias * ((male - 0.5) + (old - 0.5)))
    y = (rng.uniform(size=n) < p_malignant).astype(np.int64)

    p.update(male=male, age=age, old=old, skin_type=skin_type, y=y, p_malignant=p_malignant)

    # lesion
    g = rng.normal(np.where(y == 1, _IRR_MEAN[1], _IRR_MEAN[0]), 1.0)
    p["irregularity"] = expit(g)
    p["radius"] = rng.uniform(*_RADIUS, size=n) * H
    offset = np.clip(rng.normal(0.0, _CENTER_SD, size=(n, 2)), -2 * _CENTER_SD, 2 * _CENTER_SD)
    p["center"] = (H - 1) / 2 + offset * H  # (x, y) in pixels
    p["aspect"] = rng.uniform(*_ASPECT, size=n)
    p["orientation"] = rng.uniform(0, np.pi, size=n)
    k = _HARMONICS
    c = rng.uniform(0, 1, size=(n, k.size)) / np.sqrt(k)
    p["harm_amp"] = c / np.sqrt((c**2).sum(axis=1, keepdims=True) / 2)
    p["harm_phase"] = rng.uniform(0, 2 * np.pi, size=(n, k.size))
    p["density"] = np.exp(rng.normal(0.0, _DENSITY_SD, size=n))
    for name in ("wave1", "wave2"):
        freq = rng.uniform(*_WAVE_FREQ, size=(n, _N_WAVES))
        direction = rng.uniform(0, 2 * np.pi, size=(n, _N_WAVES))
        p[name + "_fx"] = freq * np.cos(direction)
        p[name + "_fy"] = freq * np.sin(direction)
        p[name + "_phase"] = rng.uniform(0, 2 * np.pi, size=(n, _N_WAVES))

    # skin
    p["skin_rgb"] = _SKIN_RGB[skin_type - 1] * np.exp(rng.normal(0, _SKIN_JITTER, size=(n, 3)))
    shade = rng.uniform(0, 2 * np.pi, size=n)
    p["shade"] = np.stack([np.cos(shade), np.sin(shade)], axis=1)

    # hair
    p_hair = _artefact_rate(np.where(male, _P_HAIR_MALE, _P_HAIR_FEMALE), artefact_strength)
    has_hair = rng.uniform(size=n) < p_hair
    n_hairs = np.minimum(_HAIR_MAX, _HAIR_MIN + rng.poisson(_HAIR_MEAN_EXTRA, size=n))
    p["has_hair"], p["n_hairs"] = has_hair, np.where(has_hair, n_hairs, 0)
    shape = (n, _HAIR_MAX)
    p["hair_point"] = rng.uniform(0, H, size=shape + (2,))
    p["hair_angle"] = rng.uniform(0, np.pi, size=shape)
    p["hair_length"] = rng.uniform(*_HAIR_LENGTH, size=shape) * H
    p["hair_curv"] = rng.normal(0, _HAIR_CURVATURE_SD / H, size=shape)

    # vignette
    p_vig = _artefact_rate(np.where(old, _P_VIGNETTE_OLD, _P_VIGNETTE_YOUNG),
                           artefact_strength)
    p["has_vignette"] = rng.uniform(size=n) < p_vig
    p["vig_radius"] = rng.uniform(*_VIGNETTE_RADIUS, size=n) * H
    p["vig_center"] = (H - 1) / 2 + rng.normal(0, _VIGNETTE_SD, size=(n, 2)) * H

    # the pixel noise is drawn while rendering, from a generator seeded here
    p["noise_seed"] = rng.randint(np.iinfo(np.int32).max)
    return p


def _artefact_rate(full, strength):
    """An artefact's probability at ``strength``: its rate at strength 1, shrunk towards 0.5
    (the rate at strength 1 itself, to the bit, so that the default images do not change)."""
    return full if strength == 1 else 0.5 + strength * (full - 0.5)


def _sigmoid(x):
    """Logistic function computed in place in the float array ``x`` (no overflow warnings)."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _variegation(p, name, sl, dx, dy):
    """Variegation field (B, H, W): sum of plane waves in units of the lesion radius.

    cos(a x + b y + phi) = cos(a x + phi) cos(b y) - sin(a x + phi) sin(b y) is separable, so
    the sum over waves is one batched matrix product of (B, H, 2K) by (B, 2K, W).
    """
    f32 = np.float32
    scale = (2 * np.pi / p["radius"][sl])[:, None, None]
    ax = (scale * p[name + "_fx"][sl][:, :, None] * dx[:, None, :]).astype(f32)  # (B, K, W)
    ax += p[name + "_phase"][sl][:, :, None].astype(f32)
    by = (scale * p[name + "_fy"][sl][:, :, None] * dy[:, None, :]).astype(f32)  # (B, K, H)
    left = np.concatenate([np.cos(by), -np.sin(by)], axis=1).transpose(0, 2, 1)
    right = np.concatenate([np.cos(ax), np.sin(ax)], axis=1)
    return (left @ right) * f32(1 / np.sqrt(_N_WAVES / 2))


def _render(p, sl, H, noise_rng, out):
    """Render the images of the slice ``sl`` of the parameters into ``out``, (B, 3, H, H).

    Per-pixel maps are (B, H, W) arrays; the colour image is built channel-first, (3, B, H, W),
    so that the three pigment densities become RGB absorbances in one matrix product, and
    written straight into a channel-first view of ``out``.
    """
    f32 = np.float32
    idx = np.arange(H, dtype=np.float64)

    def col(a):  # per-image scalars -> (B, 1, 1) float32
        return np.asarray(a[sl], dtype=f32)[:, None, None]

    # the border radius depends on the angle only: tabulate it per image on 8 H angles, then
    # look it up for every pixel (rounding its angle moves a pixel by < 0.2 px on its circle)
    n_angles = 8 * H
    angles = np.linspace(-np.pi, np.pi, n_angles, endpoint=False, dtype=f32)
    rel = angles[None, :] - p["orientation"][sl, None].astype(f32)  # (B, A)
    q = p["aspect"][sl, None].astype(f32)
    ellipse = p["radius"][sl, None].astype(f32) * q / np.sqrt(1 + (q**2 - 1) * np.cos(rel) ** 2)
    harm = p["harm_amp"][sl].astype(f32)[:, :, None] * np.cos(
        _HARMONICS.astype(f32)[None, :, None] * angles[None, None, :]
        + p["harm_phase"][sl].astype(f32)[:, :, None]
    )  # (B, K, A)
    t = col(p["irregularity"])
    shape = 1 + f32(_BORDER_AMP) * t[:, :, 0] * harm.sum(axis=1)
    table = ellipse * np.maximum(f32(_BORDER_MIN), shape)
    table = np.concatenate([table, table[:, :1]], axis=1)  # (B, A + 1): the angle pi is -pi

    dx = (idx[None, :] - p["center"][sl, 0:1]).astype(f32)[:, None, :]  # (B, 1, W)
    dy = (idx[None, :] - p["center"][sl, 1:2]).astype(f32)[:, :, None]  # (B, H, 1)
    r = np.sqrt(dx**2 + dy**2)
    nearest = np.arctan2(dy, dx)
    nearest *= f32(n_angles / (2 * np.pi))
    nearest += f32(n_angles / 2 + 0.5)
    nearest = nearest.astype(np.int32)  # in [0, A]
    nearest += (np.arange(len(table), dtype=np.int32) * (n_angles + 1))[:, None, None]
    border = table.ravel().take(nearest)  # (B, H, W)
    mask = _sigmoid((border - r) / f32(_EDGE * H))

    # pigment densities (zero outside the lesion), then the transmittance exp(-K^T D)
    v1 = _variegation(p, "wave1", sl, dx[:, 0, :], dy[:, :, 0])
    tv2 = _variegation(p, "wave2", sl, dx[:, 0, :], dy[:, :, 0])
    tv2 *= t
    dens = np.empty((3,) + mask.shape, dtype=f32)
    np.maximum(1 + f32(_BROWN_AMP) * t * v1, 0, out=dens[0])
    dens[0] *= col(p["density"]) * mask
    np.maximum(tv2, 0, out=dens[1])
    dens[1] *= f32(_BLUE_AMP) * mask
    np.maximum(-tv2, 0, out=dens[2])
    dens[2] *= f32(_RED_AMP) * mask
    absorbance = np.stack([_K_BROWN, _K_BLUE, _K_RED]).astype(f32)  # (pigment, channel)
    img = out.transpose(1, 0, 2, 3)
    np.exp((-absorbance.T @ dens.reshape(3, -1)).reshape(dens.shape), out=img)

    # hair: loop over the hair index, rendering only the images that have that many hairs
    n_hairs = p["n_hairs"][sl]
    inv_width = f32(1 / (np.sqrt(2) * max(_HAIR_WIDTH_MIN, _HAIR_WIDTH * H / 64)))
    hair = np.zeros(mask.shape, dtype=f32)
    xx, yy = idx.astype(f32)[None, None, :], idx.astype(f32)[None, :, None]
    for j in range(_HAIR_MAX):
        rows = np.flatnonzero(n_hairs > j)
        if rows.size == 0:
            break
        g = sl.start + rows

        def c(a, g=g):
            return np.asarray(a[g], dtype=f32)[:, None, None]

        angle = p["hair_angle"][:, j]
        ux, uy = c(np.cos(angle)), c(np.sin(angle))
        hx = xx - c(p["hair_point"][:, j, 0])
        hy = yy - c(p["hair_point"][:, j, 1])
        along2 = hx * ux + hy * uy
        along2 *= along2
        dist = (hy * ux - hx * uy) - c(p["hair_curv"][:, j]) * along2
        dist *= inv_width
        dist *= dist
        h = np.exp(-dist, out=dist)
        h *= along2 <= c(p["hair_length"][:, j] ** 2 / 4)
        hair[rows] = np.maximum(hair[rows], h)
    alpha = hair
    alpha *= f32(_HAIR_OPACITY)

    # vignette: the fraction of light kept, (B, H, W), computed for the images that have one
    kept = np.ones_like(mask)
    rows = np.flatnonzero(p["has_vignette"][sl])
    if rows.size:
        g = sl.start + rows
        vx = xx - p["vig_center"][g, 0].astype(f32)[:, None, None]
        vy = yy - p["vig_center"][g, 1].astype(f32)[:, None, None]
        dark = np.sqrt(vx**2 + vy**2)
        dark -= p["vig_radius"][g].astype(f32)[:, None, None]
        dark *= f32(1 / (_VIGNETTE_EDGE * H))
        dark = _sigmoid(dark)
        kept[rows] -= f32(_VIGNETTE_DARKNESS) * dark

    # skin colour with the illumination gradient, hair over it, then the vignette
    u = (2 * idx / (H - 1) - 1).astype(f32)
    light = 1 + f32(_SHADING) * (
        col(p["shade"][:, 0]) * u[None, None, :] + col(p["shade"][:, 1]) * u[None, :, None]
    )
    light *= 1 - alpha
    light *= kept
    img *= light
    img *= p["skin_rgb"][sl].T.astype(f32)[:, :, None, None]
    alpha *= kept
    # uniform noise on 256 levels from random bytes (drawing floats would double the run time)
    img += alpha * _HAIR_RGB.astype(f32)[:, None, None, None] - f32(_NOISE_HALF_WIDTH)
    noise = np.frombuffer(noise_rng.bytes(img.size), dtype=np.uint8).reshape(img.shape)
    img += noise * f32(2 * _NOISE_HALF_WIDTH / 255)
    np.clip(img, 0, 1, out=img)
    return out


def _render_all(p, n, H, then=None):
    """Render the ``n`` images of the parameters ``p``: (n, 3, H, H) float32, chunk by chunk.

    ``then(sl, chunk)``, if given, may change each freshly rendered chunk (the images of the
    slice ``sl``) in place before the next one is drawn.
    """
    noise_rng = np.random.default_rng(p["noise_seed"])
    images = np.empty((n, 3, H, H), dtype=np.float32)
    # the matrix products are tiny: BLAS threads would only add overhead
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, _CHUNK):
            sl = slice(start, min(start + _CHUNK, n))
            _render(p, sl, H, noise_rng, out=images[sl])
            if then is not None:
                then(sl, images[sl])
    return images


def make_skin_lesions(
    n_samples=1000,
    image_size=64,
    *,
    bias=1.0,
    prevalence=0.3,
    artefact_strength=1.0,
    return_X_y=False,
    random_state=None,
    as_frame=False,
):
    """Generate synthetic dermoscopy images with a visible label and group shortcuts.

    Each image shows one pigmented lesion on skin. Malignant lesions tend to have an irregular
    border and a variegated colour, benign ones a round border and a uniform colour; the two
    overlap, so the image is informative but not perfect. The sensitive attributes leave
    visible traces: the skin tone follows the Fitzpatrick skin type, hair strands are frequent
    for men and a dark dermoscope vignette is frequent for patients aged 60 or more. ``bias``
    associates malignancy with being male and 60+, so that a classifier can learn those traces
    as shortcuts. The full generative process, with every distribution and constant, is in the
    ``DESCR`` of the returned Bunch.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images, at least 1.

    image_size : int, default=64
        Side H of the square images in pixels, at least 16.

    bias : float, default=1.0
        Log odds ratio of malignancy between male and female patients of the same age group,
        and between patients aged 60+ and <60 of the same sex:
        ``logit P(y=1) = b0 + bias * (z_sex + z_age)`` with ``z = +1/2`` for
        the privileged group (male, 60+) and ``-1/2`` otherwise. ``bias=0`` makes the label
        independent of the groups. Must be finite and >= 0.

    prevalence : float, default=0.3
        Population fraction of malignant lesions, in (0, 1). The intercept ``b0`` is solved so
        that the prevalence is this value whatever ``bias``.

    artefact_strength : float, default=1.0
        How strongly the artefacts follow the groups, in [0, 1]: the probability of hair is
        ``0.5 + s * 0.4`` for men and ``0.5 - s * 0.4`` for women, and likewise for the
        vignette of patients aged 60+ and <60. 1 gives 0.9 vs 0.1; 0 gives 0.5 for everyone,
        so that the images show nothing of sex and age but the skin tone (a null control:
        with ``bias > 0`` the prevalence differs, but there is no shortcut to learn).

    return_X_y : bool, default=False
        If True, return ``(images, target)`` instead of a Bunch.

    random_state : int, RandomState instance or None, default=None
        Seed of the generator; pass an int for reproducible output.

    as_frame : bool, default=False
        If True, ``target`` is a pandas Series named "malignant" and ``frame`` a DataFrame of
        the target, the sensitive features and the latent parameters of each image.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        images : ndarray of shape (n_samples, 3, image_size, image_size), dtype float32
            RGB images with values in [0, 1], channels first (as torch expects).
        target : ndarray of shape (n_samples,) of int, or Series
            0 for benign, 1 for malignant. A Series named "malignant" if ``as_frame``.
        target_names : list of str
            ``["benign", "malignant"]``.
        sensitive : DataFrame of shape (n_samples, 4)
            Columns ``sex`` ("female"/"male", categorical), ``age`` (int years),
            ``age_group`` ("<60"/"60+", categorical) and ``skin_type`` (Fitzpatrick 1-6,
            ordered categorical).
        frame : DataFrame or None
            If ``as_frame``, the target, the sensitive features and the latent parameters
            (irregularity, lesion_radius, center_x, center_y, aspect_ratio, orientation,
            pigment_density, has_hair, n_hairs, has_vignette, p_malignant); None otherwise.
        DESCR : str
            The generative process.

    (images, target) : tuple if ``return_X_y`` is True
        ``target`` is a Series if ``as_frame`` is also True.

    See Also
    --------
    fairskl.NIRClassifier : ``backbone="small_cnn"`` is a small CNN to train on these images.
    sklearn.datasets.make_classification : Tabular synthetic classification data.

    Notes
    -----
    The lesion follows the border irregularity and colour variegation of the dermoscopic ABCD
    rule [2]_; the skin tones follow Fitzpatrick's skin types [1]_; hair and dark corners are
    among the artefacts that classifiers of real dermoscopy images use as shortcuts [3]_.

    All per-image parameters are drawn first with one
    :func:`~sklearn.utils.check_random_state` generator, then the images are rendered with
    NumPy in chunks of a few hundred; 10,000 images of 64x64 take about 4 s on one CPU core.

    References
    ----------
    .. [1] T. B. Fitzpatrick, "The validity and practicality of sun-reactive skin types I
       through VI", Archives of Dermatology, 124(6), 869-871, 1988.
    .. [2] W. Stolz et al., "ABCD rule of dermatoscopy: a new practical method for early
       recognition of malignant melanoma", European Journal of Dermatology, 4, 521-527, 1994.
    .. [3] A. Bissoto, E. Valle and S. Avila, "Debiasing skin lesion datasets and models? Not
       so fast", CVPR Workshops (ISIC Skin Image Analysis), 2020.

    Examples
    --------
    >>> from fairskl.datasets import make_skin_lesions
    >>> data = make_skin_lesions(n_samples=8, image_size=32, bias=2.0, random_state=0)
    >>> data.images.shape, data.images.dtype
    ((8, 3, 32, 32), dtype('float32'))
    >>> data.target_names
    ['benign', 'malignant']
    >>> list(data.sensitive.columns)
    ['sex', 'age', 'age_group', 'skin_type']
    >>> X, y = make_skin_lesions(n_samples=8, image_size=16, return_X_y=True, random_state=0)
    >>> X.shape, y.shape
    ((8, 3, 16, 16), (8,))
    """
    _check_params(n_samples, image_size, bias, prevalence, artefact_strength)
    rng = check_random_state(random_state)
    H = int(image_size)
    p = _draw_parameters(int(n_samples), H, float(bias), float(prevalence), rng,
                         float(artefact_strength))

    images = _render_all(p, int(n_samples), H)

    sensitive = pd.DataFrame(
        {
            "sex": pd.Categorical(
                np.where(p["male"], "male", "female"), categories=["female", "male"]
            ),
            "age": p["age"].astype(np.int64),
            "age_group": pd.Categorical(
                np.where(p["old"], "60+", "<60"), categories=["<60", "60+"]
            ),
            # categorical over all six types, so that metrics can tell a type missing from a
            # cross-validation fold (see the NaN policy of fairskl.metrics)
            "skin_type": pd.Categorical(p["skin_type"].astype(np.int64), categories=range(1, 7),
                                        ordered=True),
        }
    )
    target = p["y"]
    frame = None
    if as_frame:
        target = pd.Series(target, name="malignant")
        latent = pd.DataFrame(
            {
                "irregularity": p["irregularity"],
                "lesion_radius": p["radius"] / H,
                "center_x": p["center"][:, 0],
                "center_y": p["center"][:, 1],
                "aspect_ratio": p["aspect"],
                "orientation": p["orientation"],
                "pigment_density": p["density"],
                "has_hair": p["has_hair"],
                "n_hairs": p["n_hairs"].astype(np.int64),
                "has_vignette": p["has_vignette"],
                "p_malignant": p["p_malignant"],
            }
        )
        frame = pd.concat([target, sensitive, latent], axis=1)

    if return_X_y:
        return images, target
    return Bunch(
        images=images,
        target=target,
        target_names=["benign", "malignant"],
        sensitive=sensitive,
        frame=frame,
        DESCR=DESCR,
    )


# ---------------------------------------------------------------------------------------------
# make_skin_conditions: the VAE study's synthetic data. A condition hierarchy and an image source
# whose mix differs by skin tone as on the real Fitzpatrick17k metadata, and a documented effect
# of condition, source and tone on how hard an image is to reconstruct.
# ---------------------------------------------------------------------------------------------
#: (three_partition_label, nine_partition_label, label, grain variance): Fitzpatrick17k's names;
#: the grain variance is the expected squared error that the condition's fine texture adds
_CONDITIONS = [
    ("non-neoplastic", "inflammatory", "psoriasis", 0.004),
    ("non-neoplastic", "inflammatory", "lichen planus", 0.003),
    ("non-neoplastic", "genodermatoses", "neurofibromatosis", 0.001),
    ("non-neoplastic", "genodermatoses", "hailey hailey disease", 0.004),
    ("benign", "benign epidermal", "porokeratosis actinic", 0.002),
    ("benign", "benign epidermal", "prurigo nodularis", 0.002),
    ("benign", "benign melanocyte", "nevocytic nevus", 0.0005),
    ("benign", "benign melanocyte", "halo nevus", 0.0005),
    ("malignant", "malignant epidermal", "squamous cell carcinoma", 0.002),
    ("malignant", "malignant epidermal", "basal cell carcinoma", 0.001),
    ("malignant", "malignant melanoma", "melanoma", 0.001),
    ("malignant", "malignant melanoma", "superficial spreading melanoma ssm", 0.0005),
]
_THREE = ("non-neoplastic", "benign", "malignant")
#: P(three_partition_label | tone group), from the real metadata (light FST 1-2, dark 5-6;
#: medium 3-4 halfway)
_THREE_P = {"light": (0.702, 0.144, 0.154), "medium": (0.756, 0.119, 0.125),
            "dark": (0.810, 0.094, 0.096)}
_SOURCES = ("dermaamin", "atlasdermatologico")
#: P(source = atlasdermatologico | tone group), from the real metadata
_ATLAS_P = {"light": 0.106, "medium": 0.25, "dark": 0.389}
_SOURCE_GRAIN = {"dermaamin": 0.0, "atlasdermatologico": 0.003}  # older, noisier photographs
_P_CENTAUR_AGREE = 0.5  # the second annotation agrees; else it is one type off (clipped to 1-6)

DESCR_CONDITIONS = f"""\
.. _skin_conditions_dataset:

Synthetic skin conditions (the VAE study's default)
---------------------------------------------------

The images of :func:`make_skin_lesions` (``bias=0``: sex and age carry no label information),
with a three-level condition hierarchy and an image source instead of benign/malignant, whose
mix differs by skin tone as on the real Fitzpatrick17k metadata, and a documented effect of
condition, source and tone on how hard each image is to reconstruct.

**Tone group.** light = Fitzpatrick 1-2, medium = 3-4, dark = 5-6 (skin types drawn as in
make_skin_lesions). A second annotation ``fitzpatrick_centaur`` agrees with the skin type with
probability {_P_CENTAUR_AGREE}, else is one type lighter or darker (clipped to 1-6), as a second
annotator would.

**Conditions.** three_partition_label | tone group: P(non-neoplastic, benign, malignant) =
{_THREE_P['light']} for light, {_THREE_P['dark']} for dark and {_THREE_P['medium']} for medium
(Fitzpatrick17k's shares). Within a three-partition label, each of its nine-partition labels and
each of their fine labels is equally likely (the table below). Malignant lesions are irregular
and variegated, benign and non-neoplastic ones round and uniform (the lesion model of
make_skin_lesions with y = malignant).

**Source.** "atlasdermatologico" with probability {_ATLAS_P['light']} (light),
{_ATLAS_P['medium']} (medium), {_ATLAS_P['dark']} (dark), else "dermaamin": Fitzpatrick17k's
shares.

**Reconstruction difficulty (the true effects).** Each image gets additive Gaussian "grain",
independent per pixel and channel, of variance v = v_condition + v_source + tone_effect *
[dark], then is clipped to [0, 1]. Grain cannot be reconstructed from a compressed code, so it
adds about v to the expected squared error of any reconstruction of the grain-free image (a
little less on the brightest skins, where clipping trims it: the frame's ``grain_mse`` is the
realised value per image). v_source = {_SOURCE_GRAIN}; v_condition per fine label:
{chr(10).join(f"    {three} / {nine} / {fine}: {v}" for three, nine, fine, v in _CONDITIONS)}
The dark group has more non-neoplastic images and more atlas images, so with tone_effect = 0
its raw grain is larger while, within a condition and source, tone adds exactly tone_effect.

:Images: float32, shape (n_samples, 3, H, H), values in [0, 1]
:Frame: skin_type, tone_group, fitzpatrick_centaur, three_partition_label,
    nine_partition_label, label, source, grain_var (v) and grain_mse (realised)
"""


def make_skin_conditions(n_samples=1000, image_size=64, *, tone_effect=0.0, random_state=None):
    """Synthetic skin images with a condition hierarchy and an image source that differ by tone.

    The VAE study's synthetic default: the lesions of :func:`make_skin_lesions`, labelled with
    Fitzpatrick17k-style conditions (``three_partition_label``, ``nine_partition_label``,
    ``label``) and an image ``source`` whose shares differ between light and dark skin as on the
    real metadata, and with a known effect of condition, source and skin tone on how hard each
    image is to reconstruct (additive grain of a documented variance). An analysis of a
    reconstruction gap between tones that adjusts for condition and source should recover
    ``tone_effect``; one that does not also picks up the conditions and sources that come with
    the tone. The ``DESCR`` of the returned Bunch gives every distribution and constant.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images, at least 1.
    image_size : int, default=64
        Side of the square images in pixels, at least 16.
    tone_effect : float, default=0.0
        Grain variance added to dark-skin images (Fitzpatrick 5-6), on the [0, 1] pixel scale:
        the true effect of tone on the squared reconstruction error, within a condition and
        source. At least 0.
    random_state : int, RandomState instance or None, default=None
        Seed of the generator; pass an int for reproducible output.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        images : ndarray of shape (n_samples, 3, image_size, image_size), dtype float32
            RGB images with values in [0, 1], channels first.
        sensitive : DataFrame
            ``skin_type`` (1-6), ``fitzpatrick_centaur`` (a second annotation, 1-6) and
            ``tone_group`` (light / medium / dark, categorical).
        frame : DataFrame
            The sensitive columns, ``three_partition_label``, ``nine_partition_label``,
            ``label``, ``source``, ``grain_var`` (the variance v added) and ``grain_mse`` (the
            realised mean squared grain of each image, after clipping).
        DESCR : str
            The generative process.

    See Also
    --------
    make_skin_lesions : The lesion images, with a benign/malignant label and group shortcuts.
    fairskl.experiments.reproduce_vae_fairness : The study that uses these images.

    Examples
    --------
    >>> from fairskl.datasets import make_skin_conditions
    >>> data = make_skin_conditions(n_samples=400, image_size=16, random_state=0)
    >>> data.images.shape
    (400, 3, 16, 16)
    >>> data.frame.groupby("tone_group", observed=True)["source"].apply(
    ...     lambda s: (s == "atlasdermatologico").mean()).round(2).to_dict()
    {'light': 0.1, 'medium': 0.27, 'dark': 0.43}
    """
    _check_params(n_samples, image_size, 0.0, 0.3)
    check_number("tone_effect", tone_effect, valid=lambda v: np.isfinite(v) and v >= 0,
                 expected="a finite number >= 0 (a grain variance on the [0, 1] scale, e.g. "
                          "0.002)", advice=".")
    rng = check_random_state(random_state)
    H, n = int(image_size), int(n_samples)
    p = _draw_parameters(n, H, 0.0, 0.3, rng)
    tone = np.select([p["skin_type"] <= 2, p["skin_type"] >= 5], ["light", "dark"], "medium")
    three = np.empty(n, dtype=object)
    atlas = np.empty(n, dtype=bool)
    u_three, u_source = rng.uniform(size=n), rng.uniform(size=n)
    for name in ("light", "medium", "dark"):
        rows = tone == name
        edges = np.cumsum(_THREE_P[name])
        three[rows] = np.asarray(_THREE)[np.searchsorted(edges, u_three[rows] * edges[-1])]
        atlas[rows] = u_source[rows] < _ATLAS_P[name]
    table = pd.DataFrame(_CONDITIONS, columns=["three", "nine", "label", "var"])
    condition = np.empty(n, dtype=int)
    for name in _THREE:  # a fine label uniformly among its three-partition label's
        rows = np.flatnonzero(three == name)
        options = np.flatnonzero(table["three"].to_numpy() == name)
        condition[rows] = rng.choice(options, size=len(rows))
    source = np.where(atlas, _SOURCES[1], _SOURCES[0])
    malignant = (three == "malignant").astype(np.int64)
    p["y"] = malignant
    p["irregularity"] = expit(rng.normal(np.where(malignant == 1, _IRR_MEAN[1], _IRR_MEAN[0]),
                                         1.0))
    step = rng.choice([-1, 1], size=n)
    agree = rng.uniform(size=n) < _P_CENTAUR_AGREE
    centaur = np.clip(np.where(agree, p["skin_type"], p["skin_type"] + step), 1, 6)
    grain_var = (table["var"].to_numpy()[condition] + np.where(atlas, _SOURCE_GRAIN[_SOURCES[1]],
                                                                 _SOURCE_GRAIN[_SOURCES[0]])
                 + tone_effect * (tone == "dark"))
    grain_rng = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))

    grain_mse = np.empty(n)

    def add_grain(sl, chunk):
        sd = np.sqrt(grain_var[sl]).astype(np.float32)[:, None, None, None]
        noisy = chunk + sd * grain_rng.standard_normal(chunk.shape, dtype=np.float32)
        np.clip(noisy, 0, 1, out=noisy)
        grain_mse[sl] = ((noisy - chunk) ** 2).reshape(len(noisy), -1).mean(axis=1)
        chunk[...] = noisy

    images = _render_all(p, n, H, then=add_grain)

    sensitive = pd.DataFrame({
        "skin_type": pd.Categorical(p["skin_type"].astype(np.int64), categories=range(1, 7),
                                    ordered=True),
        "fitzpatrick_centaur": centaur.astype(np.int64),
        "tone_group": pd.Categorical(tone, categories=["light", "medium", "dark"]),
    })
    frame = pd.concat([sensitive, pd.DataFrame({
        "three_partition_label": table["three"].to_numpy()[condition],
        "nine_partition_label": table["nine"].to_numpy()[condition],
        "label": table["label"].to_numpy()[condition],
        "source": pd.Categorical(source, categories=list(_SOURCES)),
        "grain_var": grain_var,
        "grain_mse": grain_mse,
    })], axis=1)
    return Bunch(images=images, sensitive=sensitive, frame=frame, DESCR=DESCR_CONDITIONS)
