"""The models folder contract on the trainer's side: bands, names, final loss, training_info.txt, latest."""
import math
import os
from datetime import datetime

import pytest

from models_dir import (band_for, base_name_for, final_loss, make_model_dir, move_latest, read_training_info,
                        write_training_info)


@pytest.mark.parametrize("loss, band", [
    (0.2999, "overfitted"), (0.3, "borderline"), (0.3999, "borderline"), (0.4, "optimal"), (0.6999, "optimal"),
    (0.7, "good"), (1.0, "good"), (1.0001, "underfitted"), (math.nan, "diverged"), (math.inf, "diverged"),
    (None, "diverged"), (0.0, "overfitted"),
])
def test_every_band_boundary(loss, band):
    assert band_for(loss)["id"] == band


def test_final_loss_is_the_mean_of_the_last_ten_step_losses_not_the_run_average():
    losses = [9.0] * 20 + [1.0] * 5 + [0.5] * 5
    assert final_loss(losses) == pytest.approx(0.75)
    assert final_loss([2.0, 4.0]) == pytest.approx(3.0)
    assert math.isnan(final_loss([]))


def test_folder_names_follow_the_seed_and_never_reuse_a_folder(tmp_path):
    when = datetime(2025, 10, 4, 21, 15)
    first = make_model_dir(tmp_path, "gpt-oss-20b", "standard", when)
    second = make_model_dir(tmp_path, "gpt-oss-20b", "standard", when)
    assert first.name == "gpt-oss-20b_standard_20251004_2115"
    assert second.name == "gpt-oss-20b_standard_20251004_2115-2"
    assert first.is_dir() and second.is_dir()


@pytest.mark.parametrize("model, base", [
    ("unsloth/gpt-oss-20b-unsloth-bnb-4bit", "gpt-oss-20b"), ("openai/gpt-oss-20b", "gpt-oss-20b"),
    ("/srv/weights/gpt-oss-120b", "gpt-oss-120b"), ("tiny", "tiny-gpt-oss"), ("/data/My Model/", "My-Model"),
])
def test_the_base_part_of_the_name_comes_from_the_base_model(model, base):
    assert base_name_for(model) == base


def test_latest_moves_atomically_and_points_at_the_folder_by_a_relative_name(tmp_path):
    a = make_model_dir(tmp_path, "m", "standard", datetime(2025, 1, 1, 0, 0))
    b = make_model_dir(tmp_path, "m", "standard", datetime(2025, 1, 1, 0, 1))
    move_latest(tmp_path, a)
    move_latest(tmp_path, b)
    assert os.readlink(tmp_path / "latest") == b.name
    assert (tmp_path / "latest").resolve() == b.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name, "latest"])


def test_training_info_reads_back_what_was_written(tmp_path):
    write_training_info(tmp_path, {"status": "succeeded", "final_loss": "0.5123", "quality": "🎯 Optimal"})
    assert read_training_info(tmp_path) == {"status": "succeeded", "final_loss": "0.5123", "quality": "🎯 Optimal"}
