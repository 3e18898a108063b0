"""`attnjax average`: the mean of the newest checkpoints' parameters, as a workdir of its own."""

import shutil

import jax
import numpy as np
import pytest

import attnjax
from attnjax import cli


def _params(workdir, step=None):
  return attnjax.load(workdir, step).params


def _average(args, capsys):
  code = cli.main(["attnjax", "average", *map(str, args)])
  return code, capsys.readouterr()


def test_two_checkpoints_average_to_their_mean_and_the_result_translates(trained, tmp_path, capsys):
  code, out = _average(["--workdir", trained, "--last", 2, "--out", tmp_path / "avg"], capsys)
  assert code == 0 and "steps 3, 6" in out.out
  p3, p6, mean = _params(trained, 3), _params(trained, 6), _params(tmp_path / "avg")
  assert attnjax.load(tmp_path / "avg").step == 6
  for a, b, m in zip(jax.tree.leaves(p3), jax.tree.leaves(p6), jax.tree.leaves(mean)):
    np.testing.assert_allclose(m, (np.asarray(a) + np.asarray(b)) / 2, rtol=1e-6, atol=1e-7)
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(p3), jax.tree.leaves(p6)))
  assert len(attnjax.load(tmp_path / "avg").translate(["7", "12"])) == 2


def test_averaging_copies_of_one_checkpoint_is_the_identity(trained, tmp_path, capsys):
  work = tmp_path / "copies"
  shutil.copytree(trained, work)
  shutil.rmtree(work / "checkpoints" / "3")
  shutil.copytree(work / "checkpoints" / "6", work / "checkpoints" / "3")
  assert _average(["--workdir", work, "--last", 2, "--out", tmp_path / "avg"], capsys)[0] == 0
  for a, m in zip(jax.tree.leaves(_params(trained, 6)), jax.tree.leaves(_params(tmp_path / "avg"))):
    np.testing.assert_array_equal(m, a)


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_refused_in_one_line(trained, data_dir, tmp_path, capsys):
  from attnjax.train.loop import train_and_evaluate
  from tests.helpers import tiny_config
  other = tiny_config(data_dir, decoder="seq2seq", steps=1)
  other.train.eval_samples = 0
  train_and_evaluate(other, tmp_path / "other", progress=False)
  work = tmp_path / "mixed"
  shutil.copytree(trained, work)
  shutil.rmtree(work / "checkpoints" / "3")
  shutil.copytree(tmp_path / "other" / "checkpoints" / "1", work / "checkpoints" / "3")
  code, out = _average(["--workdir", work, "--last", 2, "--out", tmp_path / "avg"], capsys)
  assert code == 1 and "Traceback" not in out.err
  assert "checkpoint 3 in" in out.err and "cannot be read as this workdir's model" in out.err
  assert not (tmp_path / "avg").exists()


@pytest.mark.parametrize("args, message", [
    (["--last", 50], "has 2 checkpoint(s) [3, 6]; --last=50 needs 50"),
    (["--last", 0], "--last=0: average at least one checkpoint"),
])
def test_bad_requests_are_one_line(args, message, trained, tmp_path, capsys):
  code, out = _average(["--workdir", trained, "--out", tmp_path / "avg", *args], capsys)
  assert code != 0 and message in out.err and "Traceback" not in out.err
