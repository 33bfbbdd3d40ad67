"""JAX's random draws, bit for bit, in numpy: the paper's notebook drew its problems this way.

The notebook used float64 (jax_enable_x64) and JAX's threefry PRNG in its original,
non-partitionable mode (jax_threefry_partitionable=False, the default when the paper was
written). Reimplementing those few functions here lets zoomer draw the paper's exact data
and initial weights without jax installed; tests/test_draws.py checks every one against
jax itself. A key is a uint32 array of shape (2,), as jax.random.PRNGKey returns it; every
draw also takes a stack of keys (..., 2) and stacks its draws the same way, as jax.vmap would.
"""
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)  # threefry's key-schedule constant


def _rotl(v: np.ndarray, r: int) -> np.ndarray:
    return (v << np.uint32(r)) | (v >> np.uint32(32 - r))


def threefry2x32(key: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 with 20 rounds: a counter-based block cipher keyed by two words."""
    k0, k1 = key[..., 0, None], key[..., 1, None]
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r)
            x1 = x1 ^ x0
        x0 = x0 + ks[(block + 1) % 3]
        x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def _hash(key: np.ndarray, count: np.ndarray) -> np.ndarray:
    """jax's threefry_2x32(key, count): the counts' halves are the cipher's two words."""
    n = count.size
    padded = np.concatenate([count, np.zeros(n % 2, np.uint32)])
    half = padded.size // 2
    with np.errstate(over="ignore"):
        y0, y1 = threefry2x32(np.asarray(key, np.uint32), padded[:half], padded[half:])
    return np.concatenate([y0, y1], axis=-1)[..., :n]


def prng_key(seed: int) -> np.ndarray:
    """jax.random.PRNGKey(seed) under x64: the seed's int64 high and low words."""
    bits = int(np.int64(seed).view(np.uint64))
    return np.array([bits >> 32, bits & 0xFFFFFFFF], np.uint32)


def split(key: np.ndarray, num: int = 2) -> np.ndarray:
    """jax.random.split(key, num) -> (num, 2) keys (threefry over iota(2 num))."""
    return _hash(key, np.arange(2 * num, dtype=np.uint32)).reshape(*key.shape[:-1], num, 2)


def random_bits64(key: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """64 random bits per element: threefry over iota(2 size), first half high words."""
    size = int(np.prod(shape, dtype=np.int64))
    bits = _hash(key, np.arange(2 * size, dtype=np.uint32)).astype(np.uint64)
    return ((bits[..., :size] << np.uint64(32)) | bits[..., size:]).reshape(*key.shape[:-1], *shape)


def uniform(key: np.ndarray, shape: tuple[int, ...], minval: float, maxval: float) -> np.ndarray:
    """jax.random.uniform, float64: 52 random mantissa bits on [1, 2), shifted and scaled."""
    mantissa = random_bits64(key, shape) >> np.uint64(12)
    floats = (mantissa | np.float64(1.0).view(np.uint64)).view(np.float64) - 1.0
    lo, hi = np.float64(minval), np.float64(maxval)
    return np.maximum(lo, floats * (hi - lo) + lo)


def normal(key: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """jax.random.normal, float64: sqrt(2) erf_inv(u), u uniform on (-1, 1)."""
    u = uniform(key, shape, np.nextafter(-1.0, 0.0), 1.0)
    return np.sqrt(2.0) * _erf_inv(u)


def randint(key: np.ndarray, shape: tuple[int, ...], minval: int, maxval: int) -> np.ndarray:
    """jax.random.randint, int64: two 64-bit draws reduced modulo the span.

    2^64 mod span is built as (2^32 mod span)^2 mod span, so nothing overflows uint64.
    """
    keys = split(key)
    k1, k2 = keys[..., 0, :], keys[..., 1, :]
    higher, lower = random_bits64(k1, shape), random_bits64(k2, shape)
    span = np.uint64(maxval - minval) if maxval > minval else np.uint64(1)
    multiplier = np.uint64(2**32) % span
    with np.errstate(over="ignore"):
        multiplier = (multiplier * multiplier) % span
        offset = ((higher % span) * multiplier + lower % span) % span
    return np.int64(minval) + offset.astype(np.int64)


# XLA's float64 ErfInv (Giles, "Approximating the erfinv function"): a polynomial in
# w - 3.125 for w = -log1p(-x^2) < 6.25, else in sqrt(w) - 3.25 (w < 16) or sqrt(w) - 5.
# Highest degree first; the shorter tables join the Horner recursion late, as in XLA.
_ERFINV_W_LT_6_25 = (
    -3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
    1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
    6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
    2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
    1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
    4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
    0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
    0.24015818242558961693, 1.6536545626831027356,
)
_ERFINV_W_LT_16 = (
    2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
    1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
    2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
    6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
    0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
    -0.0037512085075692412107, 0.005370914553590063617, 1.0052589676941592334,
    3.0838856104922207635,
)
_ERFINV_W_GE_16 = (
    -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
    -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
    2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
    -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
    7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
    1.0103004648645343977, 4.8499064014085844221,
)


def _erf_inv(x: np.ndarray) -> np.ndarray:
    """XLA's float64 erf_inv on the CPU, operation for operation, so jax's normals come out
    bit-equal: its Horner steps are fused multiply-adds, and so are _log1p's.

    Only for |x| < 1 on the 2^-52 grid that uniform draws live on (no +-1, no subnormals).
    """
    w = -_log1p(-x * x)
    low, mid = w < 6.25, w < 16.0
    t = np.where(low, w - 3.125, np.sqrt(w) - np.where(mid, 3.25, 5.0))
    tables = (_ERFINV_W_LT_6_25, _ERFINV_W_LT_16, _ERFINV_W_GE_16)

    def coefficient(i):
        c = np.full_like(x, tables[0][i])
        if i < len(tables[1]):
            c = np.where(low, c, tables[1][i])
        if i < len(tables[2]):
            c = np.where(mid, c, tables[2][i])
        return c

    p = coefficient(0)
    for i in range(1, len(tables[2])):
        p = fma(p, t, coefficient(i))
    for i in range(len(tables[2]), len(tables[1])):
        p = np.where(mid, fma(p, t, coefficient(i)), p)
    for i in range(len(tables[1]), len(tables[0])):
        p = np.where(low, fma(p, t, coefficient(i)), p)
    return p * x


# XLA's log1p: log(1 + x), except for |x| < sqrt(2) - 1, where it uses Cephes' rational
# approximation x - x^2/2 + x^3 P(x)/Q(x) (highest degree first).
_LOG1P_SMALL = np.sqrt(2.0) - 1.0
_LOG1P_P = (
    4.5270000862445199635215e-5, 4.9854102823193375972212e-1, 6.5787325942061044846969e0,
    2.9911919328553073277375e1, 6.0949667980987787057556e1, 5.7112963590585538103336e1,
    2.0039553499201281259648e1,
)
_LOG1P_Q = (
    1.0, 1.5062909083469192043167e1, 8.3047565967967209469434e1, 2.2176239823732856465394e2,
    3.0909872225312059774938e2, 2.1642788614495947685003e2, 6.0118660497603843919306e1,
)


def _log1p(x: np.ndarray) -> np.ndarray:
    def horner(coefficients):
        p = np.zeros_like(x)
        for c in coefficients:
            p = fma(p, x, c)
        return p

    x2 = x * x
    small = x + fma(-0.5, x2, (x * x2) * (horner(_LOG1P_P) / horner(_LOG1P_Q)))
    return np.where(np.abs(x) < _LOG1P_SMALL, small, np.log(x + 1.0))


def fma(a, b, c) -> np.ndarray:
    """a * b + c rounded once, as the CPU's fused multiply-add does (numpy has none).

    The product is split exactly into two doubles (Dekker), added to c exactly (TwoSum),
    and the tail rounded to odd before the final rounding, which makes that final rounding
    the correct one (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums", 2008).
    Exact for the finite, far-from-overflow values the draws meet.
    """
    a, b, c = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, c)))
    high, low = _two_product(a, b)
    total, error = _two_sum(c, high)
    return total + _round_to_odd_sum(error, low)


def _two_sum(a, b):
    s = a + b
    b_part = s - a
    return s, (a - (s - b_part)) + (b - b_part)


def _two_product(a, b):
    def halves(v):
        scaled = 134217729.0 * v  # 2^27 + 1
        high = scaled - (scaled - v)
        return high, v - high

    p = a * b
    (ah, al), (bh, bl) = halves(a), halves(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _round_to_odd_sum(a, b):
    s, error = _two_sum(a, b)
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    return np.where((error != 0) & even, np.nextafter(s, np.copysign(np.inf, error)), s)
