"""The DDPM family's conditioning and sampling options on a stand-in network whose output is known exactly:
classifier-free guidance is (1 + w) eps(x, c) - w eps(x, null), label dropout reaches the null class, the
sampling options reach the samplers, and bad settings are named before anything compiles."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.ddpm_cifar import get_config
from jaxgen.diffusion import schedules
from jaxgen.diffusion.build import validate_ddpm_config
from jaxgen.diffusion.ddpm import DDPM


class LabelNet(nn.Module):
  """eps = 0.1 * x + e[label]: a per-class constant, so guidance can be checked by hand."""
  num_classes: int = 3

  @nn.compact
  def __call__(self, x, t, cond=None, *, train):
    e = self.param("e", lambda k: jnp.arange(self.num_classes + 1, dtype=jnp.float32) - 1.5)
    return 0.1 * x + e[cond["label"]][:, None, None, None]


def _ddpm(**kw):
  return DDPM(network=LabelNet(), schedule=schedules.make_schedule("linear", 20, beta_start=1e-3, beta_end=0.2),
              image_shape=(2, 2, 1), num_classes=3, **kw)


def test_guidance_mixes_the_conditional_and_null_predictions():
  ddpm = _ddpm()
  params = ddpm.init(jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 2, 2, 1))
  t = jnp.array([0, 5, 10, 19])
  labels = jnp.array([0, 1, 2, 1])
  e = np.arange(4) - 1.5
  for w in (0.0, 1.0, 3.0):
    eps, x0 = ddpm.model_fn(params, {"label": labels}, guidance=w)(x, t)
    want = 0.1 * np.asarray(x) + ((1 + w) * e[np.asarray(labels)] - w * e[3])[:, None, None, None]
    np.testing.assert_allclose(eps, want, rtol=1e-5, atol=1e-6)
    ab = ddpm.schedule.alphas_cumprod[np.asarray(t)][:, None, None, None]
    np.testing.assert_allclose(x0, (np.asarray(x) - np.sqrt(1 - ab) * want) / np.sqrt(ab), rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match=r"conditioned on \('label',\)\) samples with a condition"):
    ddpm.model_fn(params, None)


def test_label_dropout_trains_the_null_class_at_its_rate():
  ddpm = _ddpm(label_dropout=0.25)
  labels = ddpm._cond({"label": np.zeros(20_000, np.int32)}, jax.random.PRNGKey(0), train=True)["label"]
  assert abs(float(jnp.mean(labels == 3)) - 0.25) < 0.01 and set(np.unique(labels)) == {0, 3}
  assert np.all(ddpm._cond({"label": np.zeros(50, np.int32)}, jax.random.PRNGKey(0), train=False)["label"] == 0)


class OracleNet(nn.Module):
  """The exact prediction for data that are all -1 (pixel 0): eps = (x_t + a) / s, x0 = -1, v = a eps + s."""
  prediction: str
  sqrt_ab: tuple
  sqrt_1m_ab: tuple

  @nn.compact
  def __call__(self, x, t, cond=None, *, train):
    self.param("unused", nn.initializers.zeros, (1,))
    a = jnp.asarray(self.sqrt_ab)[t][:, None, None, None]
    s = jnp.asarray(self.sqrt_1m_ab)[t][:, None, None, None]
    eps = (x + a) / s
    return {"eps": eps, "x0": jnp.full_like(x, -1.0), "v": a * eps + s}[self.prediction]


@pytest.mark.parametrize("weighting", ["simple", "min_snr"])
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_loss_is_zero_for_the_exact_prediction_and_positive_otherwise(prediction, weighting):
  sched = schedules.make_schedule("linear", 20, beta_start=1e-3, beta_end=0.2)
  oracle = OracleNet(prediction, tuple(map(float, sched.sqrt_alphas_cumprod)),
                     tuple(map(float, sched.sqrt_one_minus_alphas_cumprod)))
  batch = {"image": np.zeros((16, 2, 2, 1), np.uint8)}
  for net, zero in ((oracle, True), (LabelNet(), False)):
    ddpm = DDPM(network=net, schedule=sched, image_shape=(2, 2, 1), prediction=prediction, loss_weighting=weighting,
                num_classes=0 if zero else 3)
    params = ddpm.init(jax.random.PRNGKey(0))
    b = dict(batch) if zero else dict(batch, label=np.arange(16) % 3)
    loss, metrics = jax.jit(lambda p: ddpm.loss(p, b, jax.random.PRNGKey(2)))(params)
    assert metrics["loss"] == loss and (float(loss) < 1e-8 if zero else float(loss) > 1e-3), (zero, float(loss))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_sampling_options_apply(prediction):
  ddpm = _ddpm(prediction=prediction, loss_weighting="min_snr")
  params = ddpm.init(jax.random.PRNGKey(0))
  for kw in (dict(sampler="ddim", steps=5), dict(sampler="ancestral", steps=7, spacing="quadratic"),
             dict(sampler="ddim", steps=4, eta=1.0, guidance=2.0)):
    x = ddpm.sample(params, jax.random.PRNGKey(3), 6, **kw)
    assert x.shape == (6, 2, 2, 1) and float(jnp.max(jnp.abs(x))) <= 1.0


def test_the_sampler_loop_runs_the_network_once_per_step_per_guided_batch():
  """Guidance evaluates conditional and null predictions in one batch of 2B: 5 DDIM steps, 5 network calls."""
  calls = []

  class Counting(LabelNet):
    def __call__(self, x, t, cond=None, *, train):
      calls.append(x.shape[0])
      return super().__call__(x, t, cond, train=train)

  ddpm = DDPM(network=Counting(), schedule=schedules.make_schedule("linear", 20), image_shape=(2, 2, 1), num_classes=3)
  params = ddpm.init(jax.random.PRNGKey(0))
  calls.clear()
  jax.make_jaxpr(lambda p: ddpm.sample(p, jax.random.PRNGKey(0), 6, sampler="ddim", steps=5, guidance=1.0))(params)
  assert calls == [12]          # traced once inside the loop body, on the doubled batch


def test_config_errors_name_the_value():
  c = get_config("smoke")
  for field, value, message in [("prediction", "score", "diffusion.prediction='score'; choose one of: eps, x0, v"),
                                ("sampler", "plms", "diffusion.sampler='plms'; choose one of: ancestral, ddim"),
                                ("sample_steps", 51, "diffusion.sample_steps=51 must lie in [0, num_timesteps=50]"),
                                ("guidance", 3.0, "diffusion.guidance=3.0 needs a conditional model"),
                                ("loss_weighting", "p2", "diffusion.loss_weighting='p2'; choose one of")]:
    bad = get_config("smoke")
    bad.diffusion[field] = value
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
      validate_ddpm_config(bad)
  c.model.num_classes = 7
  with pytest.raises(ValueError, match="model.num_classes=7 but digits has 10 classes"):
    validate_ddpm_config(c)
  bad = get_config("smoke")
  bad.model.dtype = "float16"
  with pytest.raises(ValueError, match="model.dtype='float16'; choose one of: float32, bfloat16"):
    validate_ddpm_config(bad)


def test_bfloat16_config_builds_a_bfloat16_network_with_float32_params():
  from jaxgen.diffusion.build import make_ddpm
  c = get_config("smoke")
  c.model.dtype = "bfloat16"
  validate_ddpm_config(c)
  ddpm = make_ddpm(c)
  assert ddpm.network.dtype == jnp.bfloat16
  params = jax.eval_shape(ddpm.init, jax.random.PRNGKey(0))
  assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}


class PointMassNet(nn.Module):
  """The exact conditional denoiser of data that is a point mass at LEVELS[c] for class c: eps = (x_t - a m_c) / s."""
  sqrt_ab: tuple
  sqrt_1m_ab: tuple
  levels: tuple

  @nn.compact
  def __call__(self, x, t, cond=None, *, train):
    self.param("unused", nn.initializers.zeros, (1,))
    m = jnp.asarray(self.levels)[cond["label"]][:, None, None, None]
    a = jnp.asarray(self.sqrt_ab)[t][:, None, None, None]
    s = jnp.asarray(self.sqrt_1m_ab)[t][:, None, None, None]
    return (x - a * m) / s


@pytest.mark.parametrize("score", ["elbo", "eps_mse"])
def test_the_diffusion_classifier_picks_the_class_whose_model_explains_the_image(score):
  from jaxgen.diffusion.classifier import make_diffusion_classifier
  sched = schedules.make_schedule("linear", 40, beta_start=1e-3, beta_end=0.3)
  pixels = np.array([30, 120, 220])                        # class c: every pixel = pixels[c]
  levels = tuple(float(v) for v in np.append(pixels / 127.5 - 1.0, 0.0))
  net = PointMassNet(tuple(map(float, sched.sqrt_alphas_cumprod)), tuple(map(float, sched.sqrt_one_minus_alphas_cumprod)),
                     levels)
  ddpm = DDPM(network=net, schedule=sched, image_shape=(2, 2, 1), num_classes=3)
  params = ddpm.init(jax.random.PRNGKey(0))
  images = np.repeat(pixels, 4).reshape(3, 2, 2, 1).astype(np.uint8)[[2, 0, 1, 1]]
  classify = make_diffusion_classifier(ddpm, params, np.log(np.full(3, 1 / 3)), num_timesteps=8, score=score)
  pred, scores = classify(images)
  np.testing.assert_array_equal(pred, [2, 0, 1, 1])
  assert scores.shape == (4, 3) and np.all(np.isfinite(scores))
  with pytest.raises(ValueError, match="score='nll'; choose one of: elbo, eps_mse"):
    make_diffusion_classifier(ddpm, params, np.zeros(3), score="nll")
