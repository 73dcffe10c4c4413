"""Every test writes below a temporary output root; caches go there too; no hub access."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _isolated_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    os.environ["WORKBOOK_OUT"] = str(root)
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(root / "inductor")
    for var in ("WORKBOOK_PROFILE", "WORKBOOK_RUN_ID", "WORKBOOK_HEADLESS"):
        os.environ.pop(var, None)
    yield root
