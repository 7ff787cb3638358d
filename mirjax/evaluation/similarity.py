"""Representation similarity: centred kernel alignment (CKA), exact and by minibatch.

For n examples with features X (n, p) and Y (n, q), Gram matrices K = k(X, X) and
L = l(Y, Y) and the centring matrix H = I - 11'/n (Kornblith et al., "Similarity of Neural
Network Representations Revisited", arXiv:1905.00414):

  HSIC(K, L) = tr(K H L H) / (n - 1)^2
  CKA(K, L)  = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

Linear CKA (k, l inner products) is ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F) on centred columns;
RBF CKA uses k(x, x') = exp(-||x - x'||^2 / (2 sigma^2)) with sigma a fraction of the
median distance between examples. Minibatch CKA (Nguyen et al., "Do Wide and Deep Networks
Learn the Same Things? ...", arXiv:2010.15327) averages the unbiased HSIC estimator of Song
et al. (2012) over minibatches of a fixed size, so the features of a whole split need never
be in memory at once:

  HSIC_1(K, L) = [tr(K~ L~) + 1'K~1 1'L~1 / ((m - 1)(m - 2)) - 2/(m - 2) 1'K~L~1] / (m (m - 3))

with K~, L~ the Gram matrices with their diagonals set to zero, and

  CKA_minibatch = mean_i HSIC_1(K_i, L_i) / sqrt(mean_i HSIC_1(K_i, K_i) mean_i HSIC_1(L_i, L_i)).

Every function here is jax.numpy, jit-able, float32 unless the inputs are float64.
"""
import jax.numpy as jnp
import numpy as np

KERNELS = ("linear", "rbf")


def linear_gram(x):
  """(n, n) inner products of the rows of x (n, p)."""
  return x @ x.T


def rbf_gram(x, sigma_frac: float = 0.8):
  """(n, n) Gaussian kernel of the rows of x, exp(-d^2 / (2 sigma^2)), with sigma^2 =
  sigma_frac^2 times the median squared distance between distinct rows (Kornblith et al.
  use sigma_frac 0.2, 0.4 and 0.8)."""
  sq = jnp.sum(x * x, axis=1)
  d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
  upper = np.triu_indices(x.shape[0], 1)
  median = jnp.median(d2[upper])
  return jnp.exp(-d2 / (2 * sigma_frac ** 2 * median))


def gram(x, kernel: str = "linear", sigma_frac: float = 0.8):
  """Gram matrix of x (n, p) under `kernel` ("linear" or "rbf")."""
  if kernel == "linear":
    return linear_gram(x)
  if kernel == "rbf":
    return rbf_gram(x, sigma_frac)
  raise ValueError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")


def centre_gram(k):
  """H K H with H = I - 11'/n: the Gram matrix of the centred features."""
  k = k - k.mean(axis=0, keepdims=True)
  return k - k.mean(axis=1, keepdims=True)


def hsic(k, l):
  """Biased HSIC of two (n, n) Gram matrices: tr(K H L H) / (n - 1)^2."""
  n = k.shape[0]
  return jnp.sum(centre_gram(k) * centre_gram(l)) / (n - 1) ** 2


def unbiased_hsic(k, l):
  """Song et al.'s unbiased HSIC estimator HSIC_1 of two (m, m) Gram matrices (m > 3)."""
  m = k.shape[0]
  if m <= 3:
    raise ValueError(f"the unbiased HSIC needs more than 3 examples, got {m}")
  eye = jnp.eye(m, dtype=bool)
  k, l = jnp.where(eye, 0.0, k), jnp.where(eye, 0.0, l)
  trace = jnp.sum(k * l)  # tr(K~ L~): both symmetric
  sums = k.sum() * l.sum() / ((m - 1) * (m - 2))
  cross = 2.0 / (m - 2) * jnp.sum(k.sum(axis=0) * l.sum(axis=0))  # 1'K~L~1
  return (trace + sums - cross) / (m * (m - 3))


def cka(k, l):
  """CKA of two (n, n) Gram matrices (biased HSIC, as Kornblith et al.)."""
  return hsic(k, l) / jnp.sqrt(hsic(k, k) * hsic(l, l))


def linear_cka(x, y):
  """Linear CKA of features x (n, p) and y (n, q), computed in feature space:
  ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F) with centred columns (cost O(n p q), no n x n matrix)."""
  x = x - x.mean(axis=0)
  y = y - y.mean(axis=0)
  return jnp.sum((y.T @ x) ** 2) / (jnp.linalg.norm(x.T @ x) * jnp.linalg.norm(y.T @ y))


def feature_cka(x, y, kernel: str = "linear", sigma_frac: float = 0.8):
  """CKA of features x (n, p) and y (n, q) under `kernel`."""
  if kernel == "linear":
    return linear_cka(x, y)
  return cka(gram(x, kernel, sigma_frac), gram(y, kernel, sigma_frac))


def minibatch_hsic_terms(x, y, kernel: str = "linear", sigma_frac: float = 0.8):
  """(HSIC_1(K, L), HSIC_1(K, K), HSIC_1(L, L)) of one minibatch x (m, p), y (m, q): what
  `MinibatchCKA` sums over minibatches."""
  k, l = gram(x, kernel, sigma_frac), gram(y, kernel, sigma_frac)
  return jnp.stack([unbiased_hsic(k, l), unbiased_hsic(k, k), unbiased_hsic(l, l)])


def minibatch_cka(terms_sum):
  """CKA from the sum over minibatches of `minibatch_hsic_terms` (means and sums give the
  same ratio)."""
  xy, xx, yy = terms_sum[..., 0], terms_sum[..., 1], terms_sum[..., 2]
  return xy / jnp.sqrt(xx * yy)
