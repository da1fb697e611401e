import numpy as np
import pytest
import torch as th


@pytest.fixture(autouse=True)
def _seed() -> None:
    th.manual_seed(0)
    np.random.seed(0)
