"""Constants of the softlog ``L(x) = ln((e - 1/e) x + 1/e)``, each as a float64 pair ``(hi, lo)``.

``hi`` is the float64 nearest to the constant and ``lo`` the float64 nearest to the remainder, so
``|hi + lo - c| <= 2**-106 |c|`` (checked against mpmath at 200 bits by
``tests/test_softlog.py::test_constant_pairs_against_mpmath``). The values were produced once by
mpmath at 400 bits; nothing here is computed at import time from floating-point arithmetic.

The algorithm (``softlog_numerics/functions/_softlog.py``, proofs/softlog.md) writes ``L`` around several
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

The argument-reduction constants of the double-double kernels of
:mod:`softlog_numerics.functions._divergence` (``LN2``, ``LOG_TABLE``) and :mod:`softlog_numerics.functions._layer`
(``LN2_64``, ``EXP2_TABLE``) follow ``CONSTANTS``. They are exact float64 bit patterns written with
``float.fromhex``, produced once by mpmath at 320 bits and checked bit for bit against a fresh
300+-bit mpmath computation by ``tests/test_constants.py``; neither module imports mpmath or
computes a constant at import time.
"""

from __future__ import annotations

__all__ = [
    "A", "CONSTANTS", "D0", "DB", "EXP2_TABLE", "K0", "K1", "K_HALF", "LN2", "LN2_64", "LOG_A",
    "LOG_J0", "LOG_J1", "LOG_TABLE", "X0", "XB", "X_HALF",
]

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


# ---------------------------------------------------------------------------------------------
# Argument-reduction constants of the double-double kernels (divergence.py and layer.py).

LN2 = (float.fromhex("0x1.62e42fefa3800p-1"), float.fromhex("0x1.ef35793c76730p-45"))
"""``ln 2 = LN2[0] + LN2[1]`` with an error below ``2**-96``, for ``log(2**k m) = k ln 2 + log m``.

``LN2[0]`` is ``ln 2`` truncated (rounded toward zero) to a multiple of ``2**-42`` (42 significant
bits), so ``k * LN2[0]`` is exact for ``|k| < 2**11``; ``LN2[1]`` is the float64 nearest
``ln 2 - LN2[0]``."""

LOG_J0 = 90
"""Index of the first entry of :data:`LOG_TABLE` (``90/128 < sqrt(1/2)``)."""

LOG_J1 = 182
"""Index of the last entry of :data:`LOG_TABLE` (``182/128 > sqrt(2)``)."""

LOG_TABLE: tuple[tuple[float, float], ...] = (
    (float.fromhex("-0x1.68ac83e9c6a14p-2"), float.fromhex("-0x1.a64eadd740178p-58")),  # j = 90
    (float.fromhex("-0x1.5d5bddf595f30p-2"), float.fromhex("0x1.6541148cbb8a2p-56")),  # j = 91
    (float.fromhex("-0x1.522ae0738a3d8p-2"), float.fromhex("0x1.8f7e9b38a6979p-57")),  # j = 92
    (float.fromhex("-0x1.4718dc271c41bp-2"), float.fromhex("-0x1.8fb4c14c56eefp-60")),  # j = 93
    (float.fromhex("-0x1.3c25277333184p-2"), float.fromhex("0x1.2ad27e50a8ec6p-56")),  # j = 94
    (float.fromhex("-0x1.314f1e1d35ce4p-2"), float.fromhex("0x1.3d69909e5c3dcp-56")),  # j = 95
    (float.fromhex("-0x1.269621134db92p-2"), float.fromhex("-0x1.e0efadd9db02bp-56")),  # j = 96
    (float.fromhex("-0x1.1bf99635a6b95p-2"), float.fromhex("0x1.12aeb84249223p-57")),  # j = 97
    (float.fromhex("-0x1.1178e8227e47cp-2"), float.fromhex("0x1.0e63a5f01c691p-57")),  # j = 98
    (float.fromhex("-0x1.07138604d5862p-2"), float.fromhex("-0x1.cdb16ed4e9138p-56")),  # j = 99
    (float.fromhex("-0x1.f991c6cb3b379p-3"), float.fromhex("-0x1.f665066f980a2p-57")),  # j = 100
    (float.fromhex("-0x1.e530effe71012p-3"), float.fromhex("-0x1.2276041f43042p-59")),  # j = 101
    (float.fromhex("-0x1.d1037f2655e7bp-3"), float.fromhex("-0x1.60629242471a2p-57")),  # j = 102
    (float.fromhex("-0x1.bd087383bd8adp-3"), float.fromhex("-0x1.dd355f6a516d7p-60")),  # j = 103
    (float.fromhex("-0x1.a93ed3c8ad9e3p-3"), float.fromhex("-0x1.bcafa9de97203p-57")),  # j = 104
    (float.fromhex("-0x1.95a5adcf7017fp-3"), float.fromhex("-0x1.142c507fb7a3dp-58")),  # j = 105
    (float.fromhex("-0x1.823c16551a3c2p-3"), float.fromhex("0x1.1232ce70be781p-57")),  # j = 106
    (float.fromhex("-0x1.6f0128b756abcp-3"), float.fromhex("0x1.8de59c21e166cp-57")),  # j = 107
    (float.fromhex("-0x1.5bf406b543db2p-3"), float.fromhex("0x1.1f5b44c0df7e7p-61")),  # j = 108
    (float.fromhex("-0x1.4913d8333b561p-3"), float.fromhex("0x1.0d5604930f135p-58")),  # j = 109
    (float.fromhex("-0x1.365fcb0159016p-3"), float.fromhex("-0x1.7d411a5b944adp-58")),  # j = 110
    (float.fromhex("-0x1.23d712a49c202p-3"), float.fromhex("0x1.6e38161051d69p-57")),  # j = 111
    (float.fromhex("-0x1.1178e8227e47cp-3"), float.fromhex("0x1.0e63a5f01c691p-58")),  # j = 112
    (float.fromhex("-0x1.fe89139dbd566p-4"), float.fromhex("0x1.ac9f4215f9393p-58")),  # j = 113
    (float.fromhex("-0x1.da727638446a2p-4"), float.fromhex("-0x1.401fa71733019p-58")),  # j = 114
    (float.fromhex("-0x1.b6ac88dad5b1cp-4"), float.fromhex("0x1.0057eed1ca59fp-59")),  # j = 115
    (float.fromhex("-0x1.9335e5d594989p-4"), float.fromhex("0x1.478a85704ccb7p-58")),  # j = 116
    (float.fromhex("-0x1.700d30aeac0e1p-4"), float.fromhex("0x1.72566212cdd05p-61")),  # j = 117
    (float.fromhex("-0x1.4d3115d207eacp-4"), float.fromhex("-0x1.769f42c7842ccp-58")),  # j = 118
    (float.fromhex("-0x1.2aa04a44717a5p-4"), float.fromhex("0x1.d15d38d2fa3f7p-58")),  # j = 119
    (float.fromhex("-0x1.08598b59e3a07p-4"), float.fromhex("0x1.dd7009902bf32p-58")),  # j = 120
    (float.fromhex("-0x1.ccb73cdddb2ccp-5"), float.fromhex("0x1.e48fb0500efd4p-59")),  # j = 121
    (float.fromhex("-0x1.894aa149fb343p-5"), float.fromhex("-0x1.a8be97660a23dp-60")),  # j = 122
    (float.fromhex("-0x1.466aed42de3eap-5"), float.fromhex("0x1.cdd6f7f4a137ep-59")),  # j = 123
    (float.fromhex("-0x1.0415d89e74444p-5"), float.fromhex("-0x1.c05cf1d753622p-59")),  # j = 124
    (float.fromhex("-0x1.8492528c8cabfp-6"), float.fromhex("0x1.d192d0619fa67p-60")),  # j = 125
    (float.fromhex("-0x1.0205658935847p-6"), float.fromhex("-0x1.27c8e8416e71fp-60")),  # j = 126
    (float.fromhex("-0x1.010157588de71p-7"), float.fromhex("-0x1.46662d417ced0p-62")),  # j = 127
    (float.fromhex("0x0.0p+0"), float.fromhex("0x0.0p+0")),  # j = 128
    (float.fromhex("0x1.fe02a6b106789p-8"), float.fromhex("-0x1.e44b7e3711ebfp-67")),  # j = 129
    (float.fromhex("0x1.fc0a8b0fc03e4p-7"), float.fromhex("-0x1.83092c59642a1p-62")),  # j = 130
    (float.fromhex("0x1.7b91b07d5b11bp-6"), float.fromhex("-0x1.5b602ace3a510p-60")),  # j = 131
    (float.fromhex("0x1.f829b0e783300p-6"), float.fromhex("0x1.33e3f04f1ef23p-60")),  # j = 132
    (float.fromhex("0x1.39e87b9febd60p-5"), float.fromhex("-0x1.5bfa937f551bbp-59")),  # j = 133
    (float.fromhex("0x1.77458f632dcfcp-5"), float.fromhex("0x1.18d3ca87b9296p-59")),  # j = 134
    (float.fromhex("0x1.b42dd711971bfp-5"), float.fromhex("-0x1.eb9759c130499p-60")),  # j = 135
    (float.fromhex("0x1.f0a30c01162a6p-5"), float.fromhex("0x1.85f325c5bbacdp-59")),  # j = 136
    (float.fromhex("0x1.16536eea37ae1p-4"), float.fromhex("-0x1.79da3e8c22cdap-60")),  # j = 137
    (float.fromhex("0x1.341d7961bd1d1p-4"), float.fromhex("-0x1.b599f227becbbp-58")),  # j = 138
    (float.fromhex("0x1.51b073f06183fp-4"), float.fromhex("0x1.a49e39a1a8be4p-58")),  # j = 139
    (float.fromhex("0x1.6f0d28ae56b4cp-4"), float.fromhex("-0x1.906d99184b992p-58")),  # j = 140
    (float.fromhex("0x1.8c345d6319b21p-4"), float.fromhex("-0x1.4a697ab3424a9p-61")),  # j = 141
    (float.fromhex("0x1.a926d3a4ad563p-4"), float.fromhex("0x1.942f48aa70ea9p-58")),  # j = 142
    (float.fromhex("0x1.c5e548f5bc743p-4"), float.fromhex("0x1.5d617ef8161b1p-60")),  # j = 143
    (float.fromhex("0x1.e27076e2af2e6p-4"), float.fromhex("-0x1.61578001e0162p-60")),  # j = 144
    (float.fromhex("0x1.fec9131dbeabbp-4"), float.fromhex("-0x1.5746b9981b36cp-58")),  # j = 145
    (float.fromhex("0x1.0d77e7cd08e59p-3"), float.fromhex("0x1.9a5dc5e9030acp-57")),  # j = 146
    (float.fromhex("0x1.1b72ad52f67a0p-3"), float.fromhex("0x1.483023472cd74p-58")),  # j = 147
    (float.fromhex("0x1.29552f81ff523p-3"), float.fromhex("0x1.301771c407dbfp-57")),  # j = 148
    (float.fromhex("0x1.371fc201e8f74p-3"), float.fromhex("0x1.de6cb62af18a0p-58")),  # j = 149
    (float.fromhex("0x1.44d2b6ccb7d1ep-3"), float.fromhex("0x1.9f4f6543e1f88p-57")),  # j = 150
    (float.fromhex("0x1.526e5e3a1b438p-3"), float.fromhex("-0x1.746ff8a470d3ap-57")),  # j = 151
    (float.fromhex("0x1.5ff3070a793d4p-3"), float.fromhex("-0x1.bc60efafc6f6ep-58")),  # j = 152
    (float.fromhex("0x1.6d60fe719d21dp-3"), float.fromhex("-0x1.caae268ecd179p-57")),  # j = 153
    (float.fromhex("0x1.7ab890210d909p-3"), float.fromhex("0x1.be36b2d6a0608p-59")),  # j = 154
    (float.fromhex("0x1.87fa06520c911p-3"), float.fromhex("-0x1.bf7fdbfa08d9ap-57")),  # j = 155
    (float.fromhex("0x1.9525a9cf456b4p-3"), float.fromhex("0x1.d904c1d4e2e26p-57")),  # j = 156
    (float.fromhex("0x1.a23bc1fe2b563p-3"), float.fromhex("0x1.93711b07a998cp-59")),  # j = 157
    (float.fromhex("0x1.af3c94e80bff3p-3"), float.fromhex("-0x1.398cff3641985p-58")),  # j = 158
    (float.fromhex("0x1.bc286742d8cd6p-3"), float.fromhex("0x1.4fce744870f55p-58")),  # j = 159
    (float.fromhex("0x1.c8ff7c79a9a22p-3"), float.fromhex("-0x1.4f689f8434012p-57")),  # j = 160
    (float.fromhex("0x1.d5c216b4fbb91p-3"), float.fromhex("0x1.6e443597e4d40p-57")),  # j = 161
    (float.fromhex("0x1.e27076e2af2e6p-3"), float.fromhex("-0x1.61578001e0162p-59")),  # j = 162
    (float.fromhex("0x1.ef0adcbdc5936p-3"), float.fromhex("0x1.48637950dc20dp-57")),  # j = 163
    (float.fromhex("0x1.fb9186d5e3e2bp-3"), float.fromhex("-0x1.caaae64f21acbp-57")),  # j = 164
    (float.fromhex("0x1.0402594b4d041p-2"), float.fromhex("-0x1.28ec217a5022dp-57")),  # j = 165
    (float.fromhex("0x1.0a324e27390e3p-2"), float.fromhex("0x1.7dcfde8061c03p-56")),  # j = 166
    (float.fromhex("0x1.1058bf9ae4ad5p-2"), float.fromhex("0x1.89fa0ab4cb31dp-58")),  # j = 167
    (float.fromhex("0x1.1675cababa60ep-2"), float.fromhex("0x1.ce63eab883717p-61")),  # j = 168
    (float.fromhex("0x1.1c898c16999fbp-2"), float.fromhex("-0x1.0e5c62aff1c44p-60")),  # j = 169
    (float.fromhex("0x1.22941fbcf7966p-2"), float.fromhex("-0x1.76f5eb09628afp-56")),  # j = 170
    (float.fromhex("0x1.2895a13de86a3p-2"), float.fromhex("0x1.7ad24c13f040ep-56")),  # j = 171
    (float.fromhex("0x1.2e8e2bae11d31p-2"), float.fromhex("-0x1.8f4cdb95ebdf9p-56")),  # j = 172
    (float.fromhex("0x1.347dd9a987d55p-2"), float.fromhex("-0x1.4dd4c580919f8p-57")),  # j = 173
    (float.fromhex("0x1.3a64c556945eap-2"), float.fromhex("-0x1.c68651945f97cp-57")),  # j = 174
    (float.fromhex("0x1.404308686a7e4p-2"), float.fromhex("-0x1.0bcfb6082ce6dp-56")),  # j = 175
    (float.fromhex("0x1.4618bc21c5ec2p-2"), float.fromhex("0x1.f42decdeccf1dp-56")),  # j = 176
    (float.fromhex("0x1.4be5f957778a1p-2"), float.fromhex("-0x1.259b35b04813dp-57")),  # j = 177
    (float.fromhex("0x1.51aad872df82dp-2"), float.fromhex("0x1.3927ac19f55e3p-59")),  # j = 178
    (float.fromhex("0x1.5767717455a6cp-2"), float.fromhex("0x1.526adb283660cp-56")),  # j = 179
    (float.fromhex("0x1.5d1bdbf5809cap-2"), float.fromhex("0x1.4236383dc7fe1p-56")),  # j = 180
    (float.fromhex("0x1.62c82f2b9c795p-2"), float.fromhex("0x1.7b7af915300e5p-57")),  # j = 181
    (float.fromhex("0x1.686c81e9b14afp-2"), float.fromhex("-0x1.ddea0f7f58e3dp-57")),  # j = 182
)
"""``log(j/128)`` as two float64 limbs for ``j = LOG_J0 .. LOG_J1`` (entry ``j - LOG_J0``), the table
for a reduced argument ``m`` in ``[sqrt(1/2), sqrt(2))``.

Each entry is ``(hi, lo)`` with ``hi`` the float64 nearest ``log(j/128)`` and ``lo`` the float64
nearest ``log(j/128) - hi``, so ``|hi + lo - log(j/128)| <= 2**-106 |log(j/128)|``; the entry for
``j = 128`` is ``(0.0, 0.0)``."""

LN2_64 = (float.fromhex("0x1.62e42fefa0000p-7"), float.fromhex("0x1.cf79abc9e3b3ap-46"))
"""``ln(2)/64 = LN2_64[0] + LN2_64[1]`` for ``exp(x) = 2**(n/64) exp(r)``, ``x = n ln(2)/64 + r``.

``LN2_64[0]`` is ``ln(2)/64`` truncated (rounded toward zero) to a multiple of ``2**-42`` (36
significant bits), so ``n * LN2_64[0]`` is exact for ``|n| < 2**17``; ``LN2_64[1]`` is the float64
nearest ``ln(2)/64 - LN2_64[0]``."""

EXP2_TABLE: tuple[tuple[float, float], ...] = (
    (float.fromhex("0x1.0000000000000p+0"), float.fromhex("0x0.0p+0")),  # i = 0
    (float.fromhex("0x1.02c9a3e778061p+0"), float.fromhex("-0x1.19083535b085dp-56")),  # i = 1
    (float.fromhex("0x1.059b0d3158574p+0"), float.fromhex("0x1.d73e2a475b465p-55")),  # i = 2
    (float.fromhex("0x1.0874518759bc8p+0"), float.fromhex("0x1.186be4bb284ffp-57")),  # i = 3
    (float.fromhex("0x1.0b5586cf9890fp+0"), float.fromhex("0x1.8a62e4adc610bp-54")),  # i = 4
    (float.fromhex("0x1.0e3ec32d3d1a2p+0"), float.fromhex("0x1.03a1727c57b53p-59")),  # i = 5
    (float.fromhex("0x1.11301d0125b51p+0"), float.fromhex("-0x1.6c51039449b3ap-54")),  # i = 6
    (float.fromhex("0x1.1429aaea92de0p+0"), float.fromhex("-0x1.32fbf9af1369ep-54")),  # i = 7
    (float.fromhex("0x1.172b83c7d517bp+0"), float.fromhex("-0x1.19041b9d78a76p-55")),  # i = 8
    (float.fromhex("0x1.1a35beb6fcb75p+0"), float.fromhex("0x1.e5b4c7b4968e4p-55")),  # i = 9
    (float.fromhex("0x1.1d4873168b9aap+0"), float.fromhex("0x1.e016e00a2643cp-54")),  # i = 10
    (float.fromhex("0x1.2063b88628cd6p+0"), float.fromhex("0x1.dc775814a8495p-55")),  # i = 11
    (float.fromhex("0x1.2387a6e756238p+0"), float.fromhex("0x1.9b07eb6c70573p-54")),  # i = 12
    (float.fromhex("0x1.26b4565e27cddp+0"), float.fromhex("0x1.2bd339940e9d9p-55")),  # i = 13
    (float.fromhex("0x1.29e9df51fdee1p+0"), float.fromhex("0x1.612e8afad1255p-55")),  # i = 14
    (float.fromhex("0x1.2d285a6e4030bp+0"), float.fromhex("0x1.0024754db41d5p-54")),  # i = 15
    (float.fromhex("0x1.306fe0a31b715p+0"), float.fromhex("0x1.6f46ad23182e4p-55")),  # i = 16
    (float.fromhex("0x1.33c08b26416ffp+0"), float.fromhex("0x1.32721843659a6p-54")),  # i = 17
    (float.fromhex("0x1.371a7373aa9cbp+0"), float.fromhex("-0x1.63aeabf42eae2p-54")),  # i = 18
    (float.fromhex("0x1.3a7db34e59ff7p+0"), float.fromhex("-0x1.5e436d661f5e3p-56")),  # i = 19
    (float.fromhex("0x1.3dea64c123422p+0"), float.fromhex("0x1.ada0911f09ebcp-55")),  # i = 20
    (float.fromhex("0x1.4160a21f72e2ap+0"), float.fromhex("-0x1.ef3691c309278p-58")),  # i = 21
    (float.fromhex("0x1.44e086061892dp+0"), float.fromhex("0x1.89b7a04ef80d0p-59")),  # i = 22
    (float.fromhex("0x1.486a2b5c13cd0p+0"), float.fromhex("0x1.3c1a3b69062f0p-56")),  # i = 23
    (float.fromhex("0x1.4bfdad5362a27p+0"), float.fromhex("0x1.d4397afec42e2p-56")),  # i = 24
    (float.fromhex("0x1.4f9b2769d2ca7p+0"), float.fromhex("-0x1.4b309d25957e3p-54")),  # i = 25
    (float.fromhex("0x1.5342b569d4f82p+0"), float.fromhex("-0x1.07abe1db13cadp-55")),  # i = 26
    (float.fromhex("0x1.56f4736b527dap+0"), float.fromhex("0x1.9bb2c011d93adp-54")),  # i = 27
    (float.fromhex("0x1.5ab07dd485429p+0"), float.fromhex("0x1.6324c054647adp-54")),  # i = 28
    (float.fromhex("0x1.5e76f15ad2148p+0"), float.fromhex("0x1.ba6f93080e65ep-54")),  # i = 29
    (float.fromhex("0x1.6247eb03a5585p+0"), float.fromhex("-0x1.383c17e40b497p-54")),  # i = 30
    (float.fromhex("0x1.6623882552225p+0"), float.fromhex("-0x1.bb60987591c34p-54")),  # i = 31
    (float.fromhex("0x1.6a09e667f3bcdp+0"), float.fromhex("-0x1.bdd3413b26456p-54")),  # i = 32
    (float.fromhex("0x1.6dfb23c651a2fp+0"), float.fromhex("-0x1.bbe3a683c88abp-57")),  # i = 33
    (float.fromhex("0x1.71f75e8ec5f74p+0"), float.fromhex("-0x1.16e4786887a99p-55")),  # i = 34
    (float.fromhex("0x1.75feb564267c9p+0"), float.fromhex("-0x1.0245957316dd3p-54")),  # i = 35
    (float.fromhex("0x1.7a11473eb0187p+0"), float.fromhex("-0x1.41577ee04992fp-55")),  # i = 36
    (float.fromhex("0x1.7e2f336cf4e62p+0"), float.fromhex("0x1.05d02ba15797ep-56")),  # i = 37
    (float.fromhex("0x1.82589994cce13p+0"), float.fromhex("-0x1.d4c1dd41532d8p-54")),  # i = 38
    (float.fromhex("0x1.868d99b4492edp+0"), float.fromhex("-0x1.fc6f89bd4f6bap-54")),  # i = 39
    (float.fromhex("0x1.8ace5422aa0dbp+0"), float.fromhex("0x1.6e9f156864b27p-54")),  # i = 40
    (float.fromhex("0x1.8f1ae99157736p+0"), float.fromhex("0x1.5cc13a2e3976cp-55")),  # i = 41
    (float.fromhex("0x1.93737b0cdc5e5p+0"), float.fromhex("-0x1.75fc781b57ebcp-57")),  # i = 42
    (float.fromhex("0x1.97d829fde4e50p+0"), float.fromhex("-0x1.d185b7c1b85d1p-54")),  # i = 43
    (float.fromhex("0x1.9c49182a3f090p+0"), float.fromhex("0x1.c7c46b071f2bep-56")),  # i = 44
    (float.fromhex("0x1.a0c667b5de565p+0"), float.fromhex("-0x1.359495d1cd533p-54")),  # i = 45
    (float.fromhex("0x1.a5503b23e255dp+0"), float.fromhex("-0x1.d2f6edb8d41e1p-54")),  # i = 46
    (float.fromhex("0x1.a9e6b5579fdbfp+0"), float.fromhex("0x1.0fac90ef7fd31p-54")),  # i = 47
    (float.fromhex("0x1.ae89f995ad3adp+0"), float.fromhex("0x1.7a1cd345dcc81p-54")),  # i = 48
    (float.fromhex("0x1.b33a2b84f15fbp+0"), float.fromhex("-0x1.2805e3084d708p-57")),  # i = 49
    (float.fromhex("0x1.b7f76f2fb5e47p+0"), float.fromhex("-0x1.5584f7e54ac3bp-56")),  # i = 50
    (float.fromhex("0x1.bcc1e904bc1d2p+0"), float.fromhex("0x1.23dd07a2d9e84p-55")),  # i = 51
    (float.fromhex("0x1.c199bdd85529cp+0"), float.fromhex("0x1.11065895048ddp-55")),  # i = 52
    (float.fromhex("0x1.c67f12e57d14bp+0"), float.fromhex("0x1.2884dff483cadp-54")),  # i = 53
    (float.fromhex("0x1.cb720dcef9069p+0"), float.fromhex("0x1.503cbd1e949dbp-56")),  # i = 54
    (float.fromhex("0x1.d072d4a07897cp+0"), float.fromhex("-0x1.cbc3743797a9cp-54")),  # i = 55
    (float.fromhex("0x1.d5818dcfba487p+0"), float.fromhex("0x1.2ed02d75b3707p-55")),  # i = 56
    (float.fromhex("0x1.da9e603db3285p+0"), float.fromhex("0x1.c2300696db532p-54")),  # i = 57
    (float.fromhex("0x1.dfc97337b9b5fp+0"), float.fromhex("-0x1.1a5cd4f184b5cp-54")),  # i = 58
    (float.fromhex("0x1.e502ee78b3ff6p+0"), float.fromhex("0x1.39e8980a9cc8fp-55")),  # i = 59
    (float.fromhex("0x1.ea4afa2a490dap+0"), float.fromhex("-0x1.e9c23179c2893p-54")),  # i = 60
    (float.fromhex("0x1.efa1bee615a27p+0"), float.fromhex("0x1.dc7f486a4b6b0p-54")),  # i = 61
    (float.fromhex("0x1.f50765b6e4540p+0"), float.fromhex("0x1.9d3e12dd8a18bp-54")),  # i = 62
    (float.fromhex("0x1.fa7c1819e90d8p+0"), float.fromhex("0x1.74853f3a5931ep-55")),  # i = 63
)
"""``2**(i/64)`` as two float64 limbs for ``i = 0 .. 63`` (entry ``i``).

Each entry is ``(hi, lo)`` with ``hi`` the float64 nearest ``2**(i/64)`` and ``lo`` the float64
nearest ``2**(i/64) - hi``; the entry for ``i = 0`` is ``(1.0, 0.0)``."""


INV_FACTORIALS: tuple[tuple[float, float], ...] = (
    (float.fromhex("0x1.0000000000000p+0"), float.fromhex("0x0.0p+0")),  # 1/0!
    (float.fromhex("0x1.0000000000000p+0"), float.fromhex("0x0.0p+0")),  # 1/1!
    (float.fromhex("0x1.0000000000000p-1"), float.fromhex("0x0.0p+0")),  # 1/2!
    (float.fromhex("0x1.5555555555555p-3"), float.fromhex("0x1.5555555555555p-57")),  # 1/3!
    (float.fromhex("0x1.5555555555555p-5"), float.fromhex("0x1.5555555555555p-59")),  # 1/4!
    (float.fromhex("0x1.1111111111111p-7"), float.fromhex("0x1.1111111111111p-63")),  # 1/5!
    (float.fromhex("0x1.6c16c16c16c17p-10"), float.fromhex("-0x1.f49f49f49f49fp-65")),  # 1/6!
    (float.fromhex("0x1.a01a01a01a01ap-13"), float.fromhex("0x1.a01a01a01a01ap-73")),  # 1/7!
    (float.fromhex("0x1.a01a01a01a01ap-16"), float.fromhex("0x1.a01a01a01a01ap-76")),  # 1/8!
    (float.fromhex("0x1.71de3a556c734p-19"), float.fromhex("-0x1.c154f8ddc6c00p-73")),  # 1/9!
    (float.fromhex("0x1.27e4fb7789f5cp-22"), float.fromhex("0x1.cbbc05b4fa99ap-76")),  # 1/10!
)
"""``1/i!`` as two float64 limbs for ``i = 0 .. 10`` (entry ``i``), the Taylor coefficients of the
double-double ``expm1`` of log-softmax: ``hi`` the float64 nearest ``1/i!`` and ``lo`` the float64
nearest ``1/i! - hi``, so ``|hi + lo - 1/i!| <= 2**-106 / i!``."""
