"""Shared fixtures: the built-in data, generated once per test session."""
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory):
    """(root, summary) of the built-in datasets, small scale."""
    from mim_pretrain.datasets import generate_all
    root = str(tmp_path_factory.mktemp('data'))
    summary = generate_all(root, seed=0, scale=0.25)
    return root, summary


@pytest.fixture
def python_exe() -> str:
    return sys.executable
