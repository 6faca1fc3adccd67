"""pytest plugin, loaded with `-p tests.support.pytest_env` (pytest.ini): environment for unit tests.

Runs at import, before pytest-django imports panel.settings (which needs a writable
CERTPANEL_DATA_DIR). Each pytest process (xdist worker) gets its own data directory
under one temporary root, removed when the process that created it exits. Unit tests
use Redis database 15 on the default port (CERTPANEL_TEST_REDIS_URL overrides).
End-to-end stacks do not inherit any of this: PanelStack builds its own environment.
"""

import atexit
import os
import shutil
import tempfile


def configure_unit_test_environment() -> str:
    root = os.environ.get("CERTPANEL_TEST_DATA_ROOT")
    if not root:
        root = tempfile.mkdtemp(prefix="certpanel-tests-")
        os.environ["CERTPANEL_TEST_DATA_ROOT"] = root  # inherited by xdist workers
        atexit.register(shutil.rmtree, root, True)
    data_dir = os.path.join(root, os.environ.get("PYTEST_XDIST_WORKER", "main"))
    os.makedirs(data_dir, exist_ok=True)
    os.environ["CERTPANEL_DATA_DIR"] = data_dir
    os.environ["REDIS_URL"] = os.environ.get("CERTPANEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    # Every process its own cache keys: xdist workers (and a second run) share that database, and
    # the reload scheduling lives in the cache.
    os.environ["CERTPANEL_CACHE_KEY_PREFIX"] = f"{os.path.basename(root)}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    return data_dir


configure_unit_test_environment()
