"""``training.objective: autoencoder``: a variational autoencoder around the run's network, trained without labels.

The network built from ``model`` (the QAT MLP, or its float twin) with ``model.autoencoder.latent`` outputs is
the **encoder's mean head** mu: it is what is deployed, and its anomaly score is sum_i mu_i^2
(:class:`~qtrigger.emulate.score.SumOfSquares`, exact in integers). Training adds, from the last hidden layer,
a float log-variance head, the reparametrised sample z = mu + exp(logvar / 2) * eps (z = mu outside training)
and a float decoder (``model.autoencoder.decoder`` ReLU layers, then linear outputs back to the inputs). Loss per
event: the mean squared reconstruction error of the inputs, each divided by its (weighted) variance over the
training events, plus ``beta`` x KL(N(mu, sigma) || N(0, 1)); per-event weights as ``training.event_weights``.
Early stopping and the learning-rate schedule are the run's recipe; the kept epoch's weights are the encoder's.
"""

from __future__ import annotations

import sys

import numpy as np

from qtrigger.config import AutoencoderConfig, TrainingConfig
from qtrigger.models.recipe import kept_epoch, recipe_callbacks
from qtrigger.models.train import TrainResult

VARIANCE_FLOOR = 1e-6  # inputs constant over the training events are not divided by ~0


def input_scales(x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Per input, 1 / its (weighted) standard deviation over ``x`` (the reconstruction loss's normalisation)."""
    w = np.ones(len(x)) if weight is None else np.asarray(weight, np.float64)
    w = w / max(w.sum(), 1e-300)
    mean = (w[:, None] * x).sum(axis=0)
    var = (w[:, None] * (x - mean) ** 2).sum(axis=0)
    return (1.0 / np.sqrt(np.maximum(var, VARIANCE_FLOOR))).astype(np.float32)


def with_mu_quantizer(encoder, ae: AutoencoderConfig):
    """The QAT encoder with its outputs quantized to ``quantized_bits(mu_bits, mu_integer)`` (``mu_bits`` set),
    else ``encoder`` itself."""
    if ae.mu_bits is None:
        return encoder
    import tf_keras as keras
    from qkeras import QActivation, quantized_bits

    mu = QActivation(quantized_bits(ae.mu_bits, ae.mu_integer, alpha=1), name="mu_q")(encoder.output)
    return keras.Model(encoder.input, mu, name=encoder.name)


def vae_model(encoder, ae: AutoencoderConfig, seed: int):
    """The training model around ``encoder`` (mu head): inputs → [reconstruction, mu, logvar] concatenated."""
    import tensorflow as tf
    import tf_keras as keras

    class Sampling(keras.layers.Layer):
        """z = mu + exp(logvar / 2) * eps in training, mu otherwise."""

        def call(self, inputs, training=None):
            mu, logvar = inputs
            if not training:
                return mu
            eps = tf.random.normal(tf.shape(mu), seed=seed)
            return mu + tf.exp(0.5 * logvar) * eps

    mu = encoder.output
    hidden = encoder.get_layer("output").input
    init = keras.initializers.GlorotUniform(seed=seed + 101)
    logvar = keras.layers.Dense(ae.latent, kernel_initializer="zeros", name="vae_logvar")(hidden)
    x = Sampling(name="vae_sampling")([mu, logvar])
    for k, width in enumerate(ae.decoder):
        x = keras.layers.Dense(width, activation="relu", kernel_initializer=init, name=f"vae_decoder_{k}")(x)
    n_in = int(encoder.input.shape[-1])
    recon = keras.layers.Dense(n_in, kernel_initializer=init, name="vae_reconstruction")(x)
    out = keras.layers.Concatenate(name="vae_outputs")([recon, mu, logvar])
    return keras.Model(encoder.input, out, name="qtrigger_vae")


def vae_loss(n_inputs: int, latent: int, scales: np.ndarray, beta: float):
    """Per event: mean((x - x_hat)^2 * scale^2) + beta * KL, from the concatenated outputs of :func:`vae_model`."""
    import tensorflow as tf

    scale2 = tf.constant(np.asarray(scales, np.float32) ** 2)

    def loss(x, out):
        recon, mu, logvar = out[:, :n_inputs], out[:, n_inputs:n_inputs + latent], out[:, n_inputs + latent:]
        reco = tf.reduce_mean(tf.square(x - recon) * scale2, axis=-1)
        kl = -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=-1)
        return reco + beta * kl

    return loss


def train_autoencoder(encoder, x_train: np.ndarray, x_val: np.ndarray, ae: AutoencoderConfig, cfg: TrainingConfig,
                      label: str = "encoder", sample_weight: np.ndarray | None = None,
                      val_sample_weight: np.ndarray | None = None) -> TrainResult:
    """Train the VAE around ``encoder`` (module docstring); return the encoder (mu head) with the kept weights."""
    import tf_keras as keras

    x_train, x_val = np.asarray(x_train, np.float32), np.asarray(x_val, np.float32)
    scales = input_scales(x_train, sample_weight)
    model = vae_model(encoder, ae, cfg.seed)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                  loss=vae_loss(x_train.shape[1], ae.latent, scales, ae.beta))
    w = np.ones(len(x_train)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = (w / max(w.mean(), 1e-300)).astype(np.float32)
    validation = (x_val, x_val)
    if val_sample_weight is not None:
        wv = np.asarray(val_sample_weight, np.float64)
        validation = (x_val, x_val, (wv / max(wv.mean(), 1e-300)).astype(np.float32))
    if cfg.verbose:
        print(f"training {label} (VAE, latent {ae.latent}, beta {ae.beta:g}): {len(x_train)} events, "
              f"{cfg.epochs} epochs max")
    history = model.fit(x_train, x_train, validation_data=validation, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        sample_weight=w, callbacks=recipe_callbacks(keras, cfg, 0),
                        verbose=(1 if sys.stdout.isatty() else 2) if cfg.verbose else 0, shuffle=True)
    val_loss = history.history.get("val_loss", [])
    return TrainResult(encoder, {k: [float(v) for v in vals] for k, vals in history.history.items()},
                       kept_epoch(cfg, val_loss, 0), len(val_loss))
