"""The `attnjax` command re-executes itself once with glibc's huge-page tunable (hugepages.py)."""

import os
import subprocess
import sys

import pytest

from attnjax.speed import hugepages


@pytest.fixture
def glibc(monkeypatch):
  """Pretend to be Linux with the given glibc version."""
  def set_version(version, library="glibc"):
    monkeypatch.setattr(hugepages.sys, "platform", "linux")
    monkeypatch.setattr(hugepages.platform, "libc_ver", lambda: (library, version))
  return set_version


@pytest.mark.parametrize("env, version, library, mode, expected", [
    ({}, "2.36", "glibc", "madvise", True),
    ({"GLIBC_TUNABLES": "glibc.malloc.check=0"}, "2.36", "glibc", "madvise", True),
    ({"ATTNJAX_HUGEPAGES": "0"}, "2.36", "glibc", "madvise", False),
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "2.36", "glibc", "madvise", False),
    ({}, "2.31", "glibc", "madvise", False),   # the tunable arrived in glibc 2.35
    ({}, "1.2.4", "musl", "madvise", False),
    ({}, "", "", "madvise", False),
    ({}, "2.36", "glibc", "always", False),    # every large mapping has huge pages already
    ({}, "2.36", "glibc", "never", False),
    ({}, "2.36", "glibc", None, False),        # no THP in this kernel
])
def test_wanted(glibc, env, version, library, mode, expected):
  glibc(version, library)
  assert hugepages.wanted(env, thp_mode=mode or "") is expected


def test_environment_appends_to_existing_tunables():
  assert hugepages.environment({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
  env = hugepages.environment({"GLIBC_TUNABLES": "glibc.malloc.check=0", "HOME": "/h"})
  assert env == {"GLIBC_TUNABLES": "glibc.malloc.check=0:glibc.malloc.hugetlb=1", "HOME": "/h"}


@pytest.mark.parametrize("text, mode", [
    ("always [madvise] never\n", "madvise"), ("[always] madvise never\n", "always"),
    ("always madvise [never]\n", "never"), ("garbled\n", None)])
def test_thp_mode(tmp_path, text, mode):
  path = tmp_path / "enabled"
  path.write_text(text)
  assert hugepages._thp_mode(str(path)) == mode
  assert hugepages._thp_mode(str(tmp_path / "missing")) is None


def test_reexec_happens_once_and_keeps_the_command_line():
  """A process that asks twice is re-executed at most once, with the same arguments."""
  code = ("import os, sys; from attnjax.speed import hugepages; print('run', sys.argv[1:], flush=True); "
          "hugepages.reexec_if_wanted(); hugepages.reexec_if_wanted(); "
          "print(os.environ.get('GLIBC_TUNABLES'))")
  env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "ATTNJAX_HUGEPAGES")}
  out = subprocess.run([sys.executable, "-c", code, "x", "--y"], env=env, capture_output=True,
                       text=True, check=True).stdout.splitlines()
  if hugepages.wanted(env):  # Linux, glibc >= 2.35, THP in madvise mode: re-executed once
    assert out == ["run ['x', '--y']", "run ['x', '--y']", "glibc.malloc.hugetlb=1"]
  else:
    assert out == ["run ['x', '--y']", "None"]
  off = subprocess.run([sys.executable, "-c", code], env=dict(env, ATTNJAX_HUGEPAGES="0"),
                       capture_output=True, text=True, check=True).stdout.splitlines()
  assert off == ["run []", "None"]


@pytest.mark.parametrize("tunables, mode, expected", [
    ("glibc.malloc.hugetlb=1", "madvise", True), ("glibc.malloc.check=0:glibc.malloc.hugetlb=1", "madvise", True),
    ("", "madvise", False), ("glibc.malloc.hugetlb=0", "madvise", False),
    ("glibc.malloc.hugetlb=1", "never", False), ("", "always", True)])
def test_active(tunables, mode, expected):
  assert hugepages.active({"GLIBC_TUNABLES": tunables}, thp_mode=mode) is expected
