"""Run configuration (first in the flow): YAML files in ``configs/`` validated into one :class:`RunConfig`.

Every key is validated once, here: unknown keys, wrong types, malformed fixed-point
strings, unsafe names and missing input files become a one-line :class:`QTriggerError`
naming the key. ``--set a.b=value`` overrides go through the same validation.
"""

from qtrigger.config.base import ANGLE_LSB, KNOWN_FORMS, KNOWN_LEVELS, KNOWN_METHODS, SEED_FEATURES
from qtrigger.config.inputs import (
    CONSTITUENT_FORMATS,
    DEFAULT_FORMATS,
    DataConfig,
    FeatureFormat,
    ObjectGroup,
    FeaturesConfig,
    LabelsConfig,
    Sample,
    ScoreConfig,
    Selection,
    Split,
)
from qtrigger.config.load import (
    apply_override,
    config_to_dict,
    format_validation_error,
    load_config,
    parse_yaml,
    read_yaml_mapping,
    resolve_patterns,
    resolve_sample_files,
    resolve_signal_samples,
    set_dotted,
    validate_as,
    validate_config,
)
from qtrigger.config.run import RunConfig
from qtrigger.config.training import (
    QUANT_KEYS,
    HGQConfig,
    LayerQuantization,
    AutoencoderConfig,
    ModelConfig,
    PruningConfig,
    QuantizationConfig,
    TrainingConfig,
)
from qtrigger.config.trigger import HLSConfig, Preselection, TriggerConfig

__all__ = [
    "ANGLE_LSB",
    "CONSTITUENT_FORMATS",
    "DEFAULT_FORMATS",
    "DataConfig",
    "FeatureFormat",
    "ObjectGroup",
    "FeaturesConfig",
    "HGQConfig",
    "HLSConfig",
    "KNOWN_FORMS",
    "KNOWN_LEVELS",
    "KNOWN_METHODS",
    "LabelsConfig",
    "LayerQuantization",
    "AutoencoderConfig",
    "ModelConfig",
    "Preselection",
    "PruningConfig",
    "QUANT_KEYS",
    "QuantizationConfig",
    "RunConfig",
    "SEED_FEATURES",
    "Sample",
    "ScoreConfig",
    "Selection",
    "Split",
    "TrainingConfig",
    "TriggerConfig",
    "apply_override",
    "config_to_dict",
    "format_validation_error",
    "load_config",
    "parse_yaml",
    "read_yaml_mapping",
    "resolve_patterns",
    "resolve_sample_files",
    "resolve_signal_samples",
    "set_dotted",
    "validate_as",
    "validate_config",
]
