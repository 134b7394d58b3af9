"""Fit the Chebyshev coefficients of erfc used by ledref.reference.functional (needs mpmath; not run by tests).

The Array API standard has no erf, so ledref evaluates, for z >= 0,
    erfc(z) = t * exp(-z**2 + P(t)),    t = 1 / (1 + z / 2),
with P a Chebyshev series on t in [0, 1]. The target log(erfc(z) / t) + z**2 is smooth on all of
[0, 1] (it tends to -log(2 sqrt(pi)) as z -> inf), so the coefficients fall off geometrically.
Run: python scripts/fit_erfc.py   (prints the list pasted into ledref/reference/functional.py)
"""

import mpmath as mp

mp.mp.dps = 50
N = 40


def target(t):
    z = 2 / t - 2
    return mp.log(mp.erfc(z) / t) + z * z


nodes = [mp.cos(mp.pi * (i + mp.mpf(1) / 2) / N) for i in range(N)]  # Chebyshev points in u = 2t - 1
values = [target((u + 1) / 2) for u in nodes]
coef = [2 * mp.fsum(values[i] * mp.cos(mp.pi * j * (i + mp.mpf(1) / 2) / N) for i in range(N)) / N
        for j in range(N)]
coef[0] /= 2
kept = [float(c) for c in coef[:28]]  # the rest are below 1e-19
print("ERFC_CHEBYSHEV = (")
for c in kept:
    print(f"    {c!r},")
print(")")
