"""Constants of the softlog ``L(x) = ln((e - 1/e) x + 1/e)``, each as a float64 pair ``(hi, lo)``.

``hi`` is the float64 nearest to the constant and ``lo`` the float64 nearest to the remainder, so
``|hi + lo - c| <= 2**-106 |c|`` (checked against mpmath at 200 bits by
``tests/test_softlog.py::test_constant_pairs_against_mpmath``). The values were produced once by
mpmath at 400 bits; nothing here is computed at import time from floating-point arithmetic.

The algorithm (``softlog_numerics/softlog.py``, proofs/softlog.md) writes ``L`` around several
centres ``x_C`` where ``L(x_C) = C`` is an exactly representable number:

``L(x) = C + log1p(K_C (x - x_C))``, ``K_C = (e - 1/e) e**-C``, ``x_C = (e**C - 1/e) / (e - 1/e)``.

==========  ===========================================  =====================================
name        value                                        role
==========  ===========================================  =====================================
``A``       ``e - 1/e = 2.35040238728760291...``          slope of the argument ``A x + 1/e``
``X0``      ``1/(e + 1) = 0.26894142136999512...``        zero of ``L`` (centre ``C = 0``)
``XB``      ``-1/(e**2 - 1) = -0.15651764274966565...``   branch point: ``A x + 1/e = 0``
``K0``      ``e**2 - 1 = 6.38905609893065022...``         ``K_C`` for ``C = -1`` (``x_C = 0``)
``K_HALF``  ``(e - 1/e) e**(1/2) = 3.87515841062543...``  ``K_C`` for ``C = -1/2``
``X_HALF``  ``(e**(-1/2) - 1/e)/(e - 1/e) = 0.10153...``  ``x_C`` for ``C = -1/2``
``LOG_A``   ``ln(e - 1/e) = 0.85458654213114094...``      ``L(x) ~ ln x + LOG_A`` for huge ``x``
``K1``      ``1 - e**-2 = 0.86466471676338730...``        ``K_C`` for ``C = 1`` (``x_C = 1``)
``D0``      ``A (X0 - X0[0]) = 3.9480352901293929e-17``   ``t = A (x - X0) = A s - D0`` exactly
``DB``      ``A (XB - XB[0]) = -1.0161696939676457e-17``  ``w = A (x - XB) = A s - DB`` exactly
==========  ===========================================  =====================================

``D0`` and ``DB`` carry the part of ``x0`` and of the branch point below the float64 ``X0[0]``
and ``XB[0]`` *times* ``A`` to full double-double accuracy: the pair ``X0`` alone leaves an error
of about ``2**-108`` in ``x - x0``, which is ``2**-52`` relative at ``x = X0[0]`` (the double
nearest ``x0``, at distance ``1.68e-17``).
"""

from __future__ import annotations

__all__ = ["A", "CONSTANTS", "D0", "DB", "K0", "K1", "K_HALF", "LOG_A", "X0", "XB", "X_HALF"]

A = (2.3504023872876028, 1.5699344284571337e-16)
X0 = (0.2689414213699951, 1.679727399649845e-17)
XB = (-0.15651764274966565, -4.3233860698223664e-18)
K0 = (6.38905609893065, -1.7971139497839148e-16)
K_HALF = (3.8751584106254313, 8.343230848188125e-17)
X_HALF = (0.1015363240915518, -4.158648505835023e-18)
LOG_A = (0.8545865421311409, 7.020124312270866e-18)
K1 = (0.8646647167633873, 1.042381423288669e-17)
D0 = (3.948035290129393e-17, -1.9265508984473547e-33)
DB = (-1.0161696939676457e-17, 1.8324168819767809e-34)

CONSTANTS: dict[str, tuple[float, float]] = {
    "A": A,
    "X0": X0,
    "XB": XB,
    "K0": K0,
    "K_HALF": K_HALF,
    "X_HALF": X_HALF,
    "LOG_A": LOG_A,
    "K1": K1,
    "D0": D0,
    "DB": DB,
}
"""Every pair by name, with the mpmath expression the test checks it against in
``tests/test_softlog.py`` (``e - 1/e``, ``1/(e+1)``, ``-1/(e**2-1)``, ``e**2-1``,
``(e - 1/e) sqrt(e)``, ``(exp(-1/2) - 1/e)/(e - 1/e)``, ``log(e - 1/e)``, ``1 - e**-2``,
``(e - 1/e)(1/(e+1) - X0[0])``, ``(e - 1/e)(-1/(e**2-1) - XB[0])``)."""
