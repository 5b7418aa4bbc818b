#!/usr/bin/env python3
"""Arbitrary-precision judge of macer/certify/bounds.cpp (python3-mpmath), run by tests/test_bounds.cpp.

Reads lines from stdin and prints one verdict line per input line:
  cp K N ALPHA X        Clopper-Pearson lower bound X of K successes in N at ALPHA
  binom K N P           two-sided binomial test p-value P of K in N at 1/2
  bern S S2 N ALPHA X   empirical Bernstein bound X from sum S, sum of squares S2 (hex floats)
Each verdict is "ok" or "bad <reason>". cp is judged by bracketing: the exact quantile x* lies
in [X (1 - 1e-9), X (1 + 1e-9)] iff I_{X(1-1e-9)} < alpha <= I_{X(1+1e-9)} (I increasing), so
no quantile is solved here, only the regularized incomplete beta I_x(a, b) evaluated.
"""
import sys

import mpmath as mp

mp.mp.dps = 60
REL = mp.mpf("1e-9")
DBL_MIN = mp.mpf(2) ** -1022


def log_beta_cdf(a, b, x):
    """log I_x(a, b) for integers a, b >= 1 and 0 < x < 1, to ~40 digits."""
    a, b, x = int(a), int(b), mp.mpf(x)
    if x <= 0:
        return mp.ninf
    if x >= 1:
        return mp.mpf(0)
    if b == 1:
        return a * mp.log(x)  # x^a
    if a == 1:
        return mp.log(-mp.expm1(b * mp.log1p(-x)))  # 1 - (1 - x)^b
    n = a + b - 1
    if b <= 4000:
        # The upper binomial tail P(Bin(n, x) >= a) = sum_{k=a}^{n} C(n,k) x^k (1-x)^(n-k):
        # b positive terms, no cancellation.
        logt = mp.log(mp.binomial(n, a)) + a * mp.log(x) + (n - a) * mp.log1p(-x)
        r = x / (1 - x)
        s, t = mp.mpf(0), mp.mpf(1)
        for k in range(a, n + 1):
            s += t
            t *= r * (n - k) / (k + 1)
        return logt + mp.log(s)
    if a <= 4000:
        # The complement 1 - P(Bin(n, x) <= a - 1): a terms, then one subtraction, at a
        # precision that keeps 40 digits of results as small as 1e-330.
        with mp.workdps(400):
            logt = n * mp.log1p(-x)  # k = 0 term
            r = x / (1 - x)
            s, t = mp.mpf(0), mp.exp(logt)
            for k in range(0, a):
                s += t
                t *= r * (n - k) / (k + 1)
            return mp.log(1 - s)
    # Large a and b: integrate the density, log I = g(x) + log int_0^x e^{g(t)-g(x)} dt - log B(a, b),
    # g(t) = (a-1) log t + (b-1) log(1-t). g is concave; below the mode g'(x) > 0 and the
    # integrand falls at least as e^{-g'(x) u} at distance u from x, so [x - 120/g'(x), x]
    # holds everything but e^-120 of it.
    g = lambda t: (a - 1) * mp.log(t) + (b - 1) * mp.log1p(-t)
    gp = (a - 1) / x - (b - 1) / (1 - x)
    gpp = (a - 1) / x**2 + (b - 1) / (1 - x) ** 2
    gx = g(x)
    f = lambda t: mp.exp(g(t) - gx)
    s = 1 / (max(gp, 0) + mp.sqrt(gpp))
    pts = [x]
    step = s
    left = x - (120 / gp if gp > 0 else x)
    while pts[-1] > max(left, 0):
        pts.append(max(x - step, max(left, 0)))
        step *= 2
    pts = sorted(set(pts))
    integral = mp.quad(f, pts)
    logB = mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)
    return gx + mp.log(integral) - logB


def parse(v):
    return mp.mpf(float.fromhex(v)) if v.startswith(("0x", "-0x")) else mp.mpf(v)


def judge(words):
    kind = words[0]
    if kind == "cp":
        k, n, alpha, xv = int(words[1]), int(words[2]), parse(words[3]), parse(words[4])
        if not (xv >= 0 and xv <= 1):
            return "bad not in [0, 1]"
        if k == 0:
            return "ok" if xv == 0 else "bad nA = 0 must give 0"
        la = mp.log(alpha)
        a, b = k, n - k + 1
        if xv < DBL_MIN:  # not a normal double: the exact quantile must be below DBL_MIN too
            return "ok" if log_beta_cdf(a, b, DBL_MIN) >= la else "bad subnormal where the quantile is normal"
        lo, hi = xv * (1 - REL), min(xv * (1 + REL), mp.mpf(1))
        flo, fhi = log_beta_cdf(a, b, lo), log_beta_cdf(a, b, hi)
        if flo < la <= fhi:
            return "ok"
        return "bad log I at X(1-1e-9) = %s, at X(1+1e-9) = %s, log alpha = %s" % (
            mp.nstr(flo, 15), mp.nstr(fhi, 15), mp.nstr(la, 15))
    if kind == "binom":
        k, n, pv = int(words[1]), int(words[2]), parse(words[3])
        m = max(k, n - k)
        if 2 * m <= n + 1:
            ref = mp.mpf(1)
        else:
            ref = min(mp.mpf(1), 2 * mp.exp(log_beta_cdf(m, n - m + 1, mp.mpf(1) / 2)))
        if ref < DBL_MIN:
            return "ok" if pv < DBL_MIN else "bad p-value %s where the exact one is %s" % (mp.nstr(pv, 17), mp.nstr(ref, 17))
        if abs(pv - ref) <= REL * ref:
            return "ok"
        return "bad p-value %s, exact %s" % (mp.nstr(pv, 17), mp.nstr(ref, 17))
    if kind == "bern":
        S, S2, n, alpha, xv = parse(words[1]), parse(words[2]), int(words[3]), parse(words[4]), parse(words[5])
        if n < 2:
            return "ok" if xv == 0 else "bad n < 2 must give 0"
        var = max(mp.mpf(0), (S2 - S * S / n) / (n - 1))
        t = mp.log(2 / alpha)
        terms = [S / n, mp.sqrt(2 * var * t / n), 7 * t / (3 * (n - 1))]
        ref = terms[0] - terms[1] - terms[2]
        # Relative to the result; where the three terms cancel, relative to the largest of them
        # (the double result cannot hold more).
        tol = max(REL * abs(ref), mp.mpf("1e-15") * max(terms))
        if abs(xv - ref) <= tol:
            return "ok"
        return "bad bound %s, exact %s" % (mp.nstr(xv, 17), mp.nstr(ref, 17))
    return "bad unknown line"


for line in sys.stdin:
    words = line.split()
    if words:
        print(judge(words), flush=True)
