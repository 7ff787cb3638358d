"""Wavelet scattering (mirjax.audio.scattering) against kymatio's NumPy frontend.

Tolerance: kymatio computes in float64, mirjax in float32 on device; every order's
coefficients agree to 2e-6 in relative l2 norm and 2e-6 of their largest value elementwise
(measured: about 1e-7 and 3e-7)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax.audio import scattering as sc
from mirjax.bench.common import import_kymatio

Scattering1D = import_kymatio().Scattering1D
scatter = jax.jit(sc.scatter, static_argnums=1)
log_scattering = jax.jit(sc.log_scattering, static_argnums=(1, 2, 3))


@pytest.mark.parametrize("J,Q,length", [(6, 8, 1024), (4, (4, 2), 1000), (8, 12, 4096), (3, 1, 300),
                                        (5, (2, 2), 2205)])
def test_scattering_equals_kymatio(J, Q, length):
  rng = np.random.default_rng(J)
  t = np.arange(length)
  x = np.stack([rng.standard_normal(length), np.sin(2 * np.pi * 0.05 * t) * (1 + np.sin(2 * np.pi * t / 97)),
                np.sign(np.sin(2 * np.pi * t / 64))]).astype(np.float32)
  ref = Scattering1D(J=J, shape=length, Q=Q)
  want = ref(x.astype(np.float64))  # (batch, paths, frames)
  bank = sc.scattering_bank(length, J, Q)
  got = np.moveaxis(np.asarray(scatter(x, bank)), -1, -2)
  assert got.shape == want.shape
  meta = ref.meta()
  assert [tuple(int(k) for k in key) for key in meta["key"]] == list(bank.paths)
  np.testing.assert_array_equal(bank.orders, meta["order"])
  for order in (0, 1, 2):
    w, g = want[:, bank.orders == order], got[:, bank.orders == order]
    assert np.linalg.norm(g - w) <= 2e-6 * np.linalg.norm(w), f"order {order}"
    np.testing.assert_allclose(g, w, rtol=0, atol=2e-6 * np.abs(w).max(), err_msg=f"order {order}")


def test_first_order_only_and_leading_axes():
  bank1 = sc.scattering_bank(512, 4, 4, max_order=1)
  bank2 = sc.scattering_bank(512, 4, 4)
  x = np.random.default_rng(0).standard_normal((2, 3, 512)).astype(np.float32)
  s1, s2 = scatter(x, bank1), scatter(x, bank2)
  assert s1.shape == (2, 3, bank1.frames, len(bank1.paths)) and set(bank1.orders) == {0, 1}
  np.testing.assert_allclose(s1, s2[..., : len(bank1.paths)], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(s2[1, 2], scatter(x[1, 2], bank2), rtol=1e-6, atol=1e-7)


def test_a_sharded_batch_is_scattered_where_it_lies():
  """Each device transforms its own signals (XLA's FFT would all-gather the batch onto
  every device): nothing is gathered, the output keeps the batch sharding and its values."""
  from jax.sharding import AxisType, NamedSharding, PartitionSpec
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
  bank = sc.scattering_bank(512, 4, 4)
  x = np.random.default_rng(1).standard_normal((jax.device_count(), 512)).astype(np.float32)
  sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
  assert "all-gather" not in scatter.lower(sharded, bank).compile().as_text()
  s = scatter(sharded, bank)
  assert s.sharding.spec[0] == "data"
  np.testing.assert_allclose(s, scatter(x, bank), rtol=1e-6, atol=1e-7)


def test_log_scattering_features_are_time_averaged_logs_of_the_chosen_orders():
  # a small bank (46 paths, orders 0 to 2): each choice of orders compiles the whole transform
  bank = sc.scattering_bank(1024, 5, 4)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 1024)), jnp.float32)
  s = np.asarray(scatter(x, bank))
  for orders in ((1,), (2,), (1, 2)):
    keep = np.isin(bank.orders, orders)
    want = np.log(1e-6 + s[..., keep]).mean(axis=1)
    np.testing.assert_allclose(log_scattering(x, bank, 1e-6, orders), want, rtol=1e-5, atol=1e-5)


def test_a_wrong_length_or_scale_is_refused_with_what_the_bank_expects():
  bank = sc.scattering_bank(1024, 6, 8)
  with pytest.raises(ValueError, match="for 1024 samples; the signal has 1000"):
    sc.scatter(np.zeros((1, 1000), np.float32), bank)
  with pytest.raises(ValueError, match="shorter than the averaging scale"):
    sc.scattering_bank(32, 6, 8)
  with pytest.raises(ValueError, match="J >= 1, Q >= 1"):
    sc.scattering_bank(1024, 6, 0)
