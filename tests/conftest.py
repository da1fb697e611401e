import numpy as np
import pytest
import torch as th


@pytest.fixture(autouse=True)
def _seed() -> None:
    th.manual_seed(0)
    np.random.seed(0)


# One torch thread per test process: pytest-xdist already runs one process per core, and small networks gain
# nothing from intra-op threads (they only spin against each other on a loaded machine).
th.set_num_threads(1)
