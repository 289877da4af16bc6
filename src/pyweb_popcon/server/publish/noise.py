"""Differential privacy for the daily publication (NOISE_EPSILON).

Every count aggregate may publish gets integer noise from the two-sided
geometric (discrete Laplace) distribution, P(z) proportional to
exp(-|z| epsilon / sensitivity), before anything is chosen for showing.
`sensitivity` is how many of those counts one host's whole report can
change (each by one), so the noised counts are epsilon-differentially
private with respect to one report; all that follows is computed from them
alone.  One thing noise cannot hide is that a bucket exists at all: an OS
release or version series that only one host has exists only with it.  So
a bucket is shown only when its noised count reaches `selection_threshold`,
at which the chance that any bucket of one host's own is shown is at most
DELTA: the publication is (epsilon, DELTA)-differentially private.

The samples are exact (integer arithmetic, Canonne, Kamath and Steinke, "The
Discrete Gaussian for Differential Privacy", 2020, algorithms 1 and 2) and
drawn from the secrets module: no floating-point rounding shapes them and
no seed can replay them.
"""

import math
import secrets
from fractions import Fraction

from pyweb_popcon import catalogue, report

DELTA = 1e-6


def sensitivity():
    """The most counts one report can change, each by one host.

    A report names one OS, virtualisation and age bucket, at most
    MAX_PYTHONS Pythons, and at most MAX_FRAMEWORKS entries of catalogue
    frameworks; each framework it names changes that framework's hosts,
    "used" and covered (a Python named) counts and one count per way of
    install, and each entry one version series, and with its Python one
    count of its framework's hosts per Python, one of its series' covered
    hosts and one of its series' hosts per Python.
    """
    names = min(len(catalogue.frameworks()), report.MAX_FRAMEWORKS)
    return (1                                   # the total
            + 3                                 # OS, virtualisation, age
            + report.MAX_PYTHONS
            + 3 * names                         # hosts, used and covered
            + min(names * len(report.VIAS), report.MAX_FRAMEWORKS)
            + report.MAX_FRAMEWORKS             # version series
            + 3 * report.MAX_FRAMEWORKS)        # by Python


def scale(epsilon):
    """The noise scale, sensitivity / epsilon, as a Fraction."""
    return Fraction(sensitivity()) / Fraction(epsilon)


def selection_threshold(epsilon):
    """The least noised count a bucket is shown with.

    A host's own bucket has count 1; it is shown when 1 + noise reaches T,
    which happens with probability under exp(-(T - 1) / scale); a report
    has at most `sensitivity` buckets, so T - 1 = scale * ln(sensitivity /
    DELTA) keeps the chance that any of them is shown under DELTA.
    """
    return 1 + math.ceil(scale(epsilon) * math.log(sensitivity() / DELTA))


def _bernoulli(num, den):
    """True with probability num/den."""
    return secrets.randbelow(den) < num


def _bernoulli_exp(num, den):
    """True with probability exp(-num/den), for num/den >= 0."""
    while num > den:
        if not _bernoulli_exp(1, 1):
            return False
        num -= den
    k = 1
    while _bernoulli(num, den * k):
        k += 1
    return k % 2 == 1


def discrete_laplace(scale):
    """An integer z with probability proportional to exp(-|z| / scale)."""
    t, s = scale.numerator, scale.denominator
    while True:
        u = secrets.randbelow(t)
        if not _bernoulli_exp(u, t):
            continue
        v = 0
        while _bernoulli_exp(1, 1):
            v += 1
        y = (u + t * v) // s
        negative = secrets.randbelow(2)
        if not (negative and y == 0):
            return -y if negative else y
