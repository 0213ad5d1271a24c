"""The whole run config (:class:`RunConfig`) and the checks across its sections."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator, model_serializer, model_validator

from qtrigger.config.base import _Strict
from qtrigger.config.inputs import DataConfig, FeaturesConfig, LabelsConfig
from qtrigger.config.training import METHOD_RECIPES, ModelConfig, PruningConfig, QuantizationConfig, TrainingConfig
from qtrigger.config.trigger import HLSConfig, TriggerConfig
from qtrigger.errors import QTriggerError
from qtrigger.rundir import NAME_PATTERN, NAME_RULE, check_distinct


class RunConfig(_Strict):
    """One run: data → features → labels → model/quantization/pruning → training → trigger → hls."""

    name: str | None = None
    output_dir: str = "runs"
    data: DataConfig
    features: FeaturesConfig = FeaturesConfig()
    labels: LabelsConfig = LabelsConfig()
    model: ModelConfig = ModelConfig()
    quantization: QuantizationConfig = QuantizationConfig()
    pruning: PruningConfig = PruningConfig()
    training: TrainingConfig = TrainingConfig()
    trigger: TriggerConfig = TriggerConfig()
    hls: HLSConfig = HLSConfig()

    @model_validator(mode="after")
    def _method_recipe(self):
        """A method with its own recipe (``METHOD_RECIPES``: HGQ2 keeps the last epoch, cosine decay) gets it for
        every recipe key the config does not set."""
        own = METHOD_RECIPES.get(self.quantization.method, {})
        missing = {k: v for k, v in own.items() if k not in self.training.model_fields_set}
        if missing:
            object.__setattr__(self, "training", self.training.model_copy(update=missing))
        return self

    @model_serializer(mode="wrap")
    def _method_recipe_dumped(self, handler):
        """A method with its own recipe dumps both keys, so a resolved config reads back to the same recipe."""
        data = handler(self)
        if self.quantization.method in METHOD_RECIPES and isinstance(data.get("training"), dict):
            for key in ("keep_epoch", "lr_schedule"):  # both, in field order
                data["training"].pop(key, None)
                data["training"][key] = getattr(self.training, key)
        return data

    @field_validator("name")
    @classmethod
    def _single_component(cls, name):
        if name is not None and not NAME_PATTERN.match(name):
            raise ValueError(f"must be {NAME_RULE}")
        return name

    @property
    def truth_branch(self) -> str | None:
        """The per-jet truth branch to read (``labels.branch``, from ``features.collection``); none with
        ``labels.source: sample`` on a collection other than ``Jet`` (L1 objects carry no truth)."""
        if self.labels.source == "sample" and self.features.collection != "Jet":
            return None
        return self.labels.branch

    @model_validator(mode="after")
    def _objects_are_event_inputs(self):
        if self.features.objects is not None and self.features.level != "event":
            raise ValueError(f"features.objects: object groups are event-level inputs; set features.level: event "
                             f"(got {self.features.level})")
        return self

    @model_validator(mode="after")
    def _autoencoder_objective(self):
        if self.training.objective != "autoencoder":
            if self.model.autoencoder is not None or "anomaly" in self.trigger.families:
                raise ValueError("model.autoencoder and the anomaly seed family need training.objective: autoencoder")
            return self
        signal = [s.name for s in self.data.samples if s.role != "background"]
        if signal:
            raise ValueError(f"training.objective autoencoder trains on background only (zero-bias crossings or the "
                             f"rate sample); data.samples lists non-background sample(s) {signal}: name signals "
                             "under trigger.signal_samples (efficiencies only, never training)")
        if self.features.level != "event" or self.model.form != "mlp" or self.model.autoencoder is None:
            raise ValueError("training.objective autoencoder needs features.level event, model.form mlp and "
                             "model.autoencoder {kind: vae, latent: N}")
        if self.pruning.active or self.model.batchnorm or self.quantization.method != "qkeras" \
                or self.training.qat_init != "random":
            raise ValueError("training.objective autoencoder: pruning, model.batchnorm, quantization.method hgq and "
                             "qat_init float_twin are not supported yet (set pruning.enabled: false)")
        families = self.trigger.families
        if self.trigger.enabled and ("anomaly" not in families or "event_network" in families):
            raise ValueError("training.objective autoencoder: trigger.families must list anomaly (not event_network), "
                             "e.g. [anomaly, jets, ht]")
        if self.trigger.enabled and not (self.trigger.rate_files and self.trigger.signal_samples):
            raise ValueError("training.objective autoencoder: the anomaly seed's study needs trigger.rate_files (its "
                             "thresholds) and trigger.signal_samples (efficiencies only)")
        return self

    @model_validator(mode="after")
    def _level_matches_families(self):
        event = self.features.level == "event"
        per_jet = [f for f in self.trigger.families if f in ("jets_tagged", "ht_tagged", "ht_ntag")]
        score = {"event_network", "anomaly"} & set(self.trigger.families)
        if event and self.trigger.enabled and (per_jet or not score):
            raise ValueError("features.level event: trigger.families must list event_network (and kinematic "
                             f"jets/ht), not the per-jet families {per_jet}; e.g. [event_network, jets, ht]")
        if not event and "event_network" in self.trigger.families:
            raise ValueError("trigger.families event_network needs features.level: event")
        if not event and self.trigger.preselection is not None:
            raise ValueError("trigger.preselection is used by event-level runs only (features.level: event)")
        if self.training.event_weights == "xsec" and not event:
            raise ValueError("training.event_weights xsec is for event-level runs; per-jet runs use gen_weight")
        return self

    @model_validator(mode="after")
    def _constituent_level_is_deepsets(self):
        constituent = self.features.level == "constituent"
        if constituent != (self.model.form == "deepsets"):
            raise ValueError("model.form deepsets and features.level constituent go together (a constituent "
                             f"network reads (constituents, fields) per jet); got form {self.model.form}, "
                             f"level {self.features.level}")
        if constituent and self.hls.strategy == "distributed_arithmetic":
            raise ValueError("features.level constituent: hls4ml's distributed-arithmetic strategy is not checked "
                             "for pooling layers; use hls.strategy latency (hls.rtl: on builds the whole network "
                             "as da4ml RTL)")
        return self

    @model_validator(mode="after")
    def _qat_init_supported(self):
        if self.training.qat_init == "float_twin" and (
                self.features.level == "event" or self.model.form == "deepsets" or self.model.batchnorm):
            raise ValueError("training.qat_init float_twin supports per-jet MLPs without model.batchnorm only")
        return self

    @model_validator(mode="after")
    def _one_entry_per_dense_layer(self):
        expected = len(self.model.dense_widths) + 1
        for key, entries in (("quantization.layers", self.quantization.layers), ("pruning.layers", self.pruning.layers)):
            if entries is not None and len(entries) != expected:
                widths = ("model.phi + model.rho" if self.model.form == "deepsets" else "model.hidden")
                raise ValueError(f"key {key}: {len(entries)} entries, expected {expected} (one per Dense layer: "
                                 f"{widths} {self.model.dense_widths}, then the output)")
        return self

    @model_validator(mode="after")
    def _separate_outputs(self):
        if self.name is not None:
            try:
                check_distinct(Path(self.output_dir) / self.name, Path(self.hls.output_dir) / self.name)
            except QTriggerError as err:
                raise ValueError(str(err)) from None
        return self
