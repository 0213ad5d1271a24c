"""The seed accept bit in HLS C++: bit-exact against Python for every family, and the check can fail."""

import numpy as np
import pytest

from qtrigger.fixedpoint import FixedType
from qtrigger.inputs.seed_jets import JetWords
from qtrigger.trigger.seed_decision import check_seed_csim, write_seed_hls
from qtrigger.trigger.seeds import Seed

WORDS = JetWords(pt_lsb_gev=0.25, pt_bits=12, ht_bits=12, ht_jet_pt_gev=30.0)
SEEDS = [
    Seed("jets_tagged", 2, jet_pt_code=160, score_code=37),
    Seed("jets_tagged", 1, jet_pt_code=80, score_code=-512),  # threshold at the type's minimum
    Seed("ht_tagged", 1, jet_pt_code=80, score_code=-5, ht_code=1200),
    Seed("jets", 3, jet_pt_code=200),
    Seed("ht", 0, ht_code=4095),  # HT threshold at saturation
    Seed("ht", 2, jet_pt_code=120, ht_code=800),
]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"{s.family}-{s.n_jets}")
def test_seed_decision_is_bit_exact(tmp_path, seed):
    result = check_seed_csim(tmp_path, "toy", seed, WORDS, FixedType(10, 4), 8, 4, n_events=5000)
    assert result == {"events": 5000, "disagreements": 0, "python_fires_disagreements": 0}


@pytest.mark.slow
def test_seed_decision_check_detects_a_wrong_header(tmp_path, monkeypatch):
    """A header whose HT saturates one code too early must be caught."""
    from qtrigger.trigger import seed_decision as decision

    real = decision._seed_header

    def off_by_one(*args):
        return real(*args).replace("static const long long HT_MAX_CODE = 4095LL;",
                                   "static const long long HT_MAX_CODE = 4094LL;")

    monkeypatch.setattr(decision, "_seed_header", off_by_one)
    result = check_seed_csim(tmp_path, "toy", Seed("ht", 0, ht_code=4095), WORDS, FixedType(10, 4), 8, 4,
                             n_events=5000)
    assert result["disagreements"] > 0


def test_seed_header_states_the_definition(tmp_path):
    header = write_seed_hls(tmp_path, "demo", SEEDS[2], WORDS, FixedType(10, 4), 8, 4).read_text()
    assert "HT >= 300 GeV and >= 1 jet with pT >= 20 GeV and score >= -0.078125" in header
    assert "static const long long HT_CODE = 1200LL;" in header and "static const bool USE_TAG = true;" in header
    assert "saturated at HT_MAX_CODE (12 bits)" in header
    with pytest.raises(ValueError, match="C identifier"):
        write_seed_hls(tmp_path, "bad name", SEEDS[0], WORDS, FixedType(10, 4), 8, 4)
    assert np.iinfo(np.int64).min < 0
