"""CIEDE2000 colour differences and a simulated deuteranopia, for the figure-style tests.

:func:`ciede2000` is the CIE 2000 colour difference written from its definition (CIE
142-2001, in the notation of Sharma, Wu and Dalal 2005, "The CIEDE2000 colour-difference
formula: implementation notes, supplementary test data, and mathematical observations",
Color Res. Appl. 30(1), 21-30), with k_L = k_C = k_H = 1. :func:`deuteranopia_lab` is the
CIELAB of colours as a deuteranope sees them (colorspacious's Machado et al. 2009 model).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.colors as mcolors
import numpy as np
from colorspacious import cspace_convert
from numpy.typing import ArrayLike, NDArray

DEUTERANOPIA = {"name": "sRGB1+CVD", "cvd_type": "deuteranomaly", "severity": 100}
"""colorspacious's colour space of full deuteranomaly (deuteranopia)."""


def ciede2000(lab1: ArrayLike, lab2: ArrayLike) -> NDArray[np.float64]:
    """Delta E_00 between CIELAB colours (``... x 3`` arrays of L*, a*, b*; broadcast).

    With ``C*_i = sqrt(a_i^2 + b_i^2)`` and ``Cbar = (C*_1 + C*_2) / 2``:

    - ``G = (1 - sqrt(Cbar^7 / (Cbar^7 + 25^7))) / 2``, ``a'_i = (1 + G) a_i``,
      ``C'_i = sqrt(a'_i^2 + b_i^2)``, ``h'_i = atan2(b_i, a'_i)`` in [0, 360) degrees;
    - ``dL' = L_2 - L_1``, ``dC' = C'_2 - C'_1``, ``dh' = h'_2 - h'_1`` moved into
      [-180, 180] (0 when ``C'_1 C'_2 = 0``), ``dH' = 2 sqrt(C'_1 C'_2) sin(dh' / 2)``;
    - the means ``L'bar``, ``C'bar``, and ``h'bar``: the mean of the hues on the short arc
      (their sum when ``C'_1 C'_2 = 0``);
    - ``T = 1 - 0.17 cos(h'bar - 30) + 0.24 cos(2 h'bar) + 0.32 cos(3 h'bar + 6)
      - 0.20 cos(4 h'bar - 63)``, ``dtheta = 30 exp(-((h'bar - 275) / 25)^2)``,
      ``R_C = 2 sqrt(C'bar^7 / (C'bar^7 + 25^7))``, ``R_T = -sin(2 dtheta) R_C``;
    - ``S_L = 1 + 0.015 (L'bar - 50)^2 / sqrt(20 + (L'bar - 50)^2)``,
      ``S_C = 1 + 0.045 C'bar``, ``S_H = 1 + 0.015 C'bar T``;

    ``Delta E_00 = sqrt((dL'/S_L)^2 + (dC'/S_C)^2 + (dH'/S_H)^2 + R_T (dC'/S_C)(dH'/S_H))``.
    """
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    chroma_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(chroma_mean**7 / (chroma_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    achromatic = c1p * c2p == 0

    delta_l = l2 - l1
    delta_c = c2p - c1p
    delta_h = h2p - h1p
    delta_h = np.where(delta_h > 180, delta_h - 360, delta_h)
    delta_h = np.where(delta_h < -180, delta_h + 360, delta_h)
    delta_h = np.where(achromatic, 0.0, delta_h)
    delta_big_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(delta_h) / 2)

    l_mean = (l1 + l2) / 2
    c_mean = (c1p + c2p) / 2
    hue_sum = h1p + h2p
    short_arc = np.abs(h1p - h2p) <= 180
    h_mean = np.where(
        achromatic,
        hue_sum,
        np.where(short_arc, hue_sum / 2, np.where(hue_sum < 360, hue_sum + 360, hue_sum - 360) / 2),
    )
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    delta_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7))
    r_t = -np.sin(np.radians(2 * delta_theta)) * r_c
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    lightness, chroma, hue = delta_l / s_l, delta_c / s_c, delta_big_h / s_h
    return np.sqrt(lightness**2 + chroma**2 + hue**2 + r_t * chroma * hue)


def deuteranopia_lab(colours: Sequence[str]) -> NDArray[np.float64]:
    """The CIELAB (D65) of ``colours`` (matplotlib colour names or hex) after a simulated
    full deuteranomaly, the simulated sRGB clipped to the displayable [0, 1]: ``n x 3``."""
    rgb = np.array([mcolors.to_rgb(colour) for colour in colours], dtype=np.float64)
    seen = np.clip(cspace_convert(rgb, DEUTERANOPIA, "sRGB1"), 0.0, 1.0)
    return np.asarray(cspace_convert(seen, "sRGB1", "CIELab"), dtype=np.float64)
