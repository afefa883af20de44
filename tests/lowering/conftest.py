import pytest

from mini_x3d import mini_x3d


@pytest.fixture(scope="module")
def mini():
    """(vanilla eval model, its mobile_cpu deploy form, an example clip), built once per test module."""
    return mini_x3d()
