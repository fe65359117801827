"""What parallel and cluster runs rely on, checked without a cluster: imports need neither dask
nor CUDA, and the thread helper is a no-op outside a Dask worker (tests/test_dask.py runs it on
one)."""

import subprocess
import sys

import torch

from fairskl._parallel import limit_torch_threads

# Every fairskl module, imported in a fresh interpreter.
IMPORT_ALL = """
import importlib, pkgutil
import fairskl
names = [m.name for m in pkgutil.walk_packages(fairskl.__path__, "fairskl.")]
for name in names:
    importlib.import_module(name)
assert len(names) > 10, names
"""


def _run(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_fairskl_imports_without_dask():
    _run("import sys\n"
         "sys.modules['dask'] = sys.modules['distributed'] = None  # unimportable\n"
         + IMPORT_ALL +
         "from fairskl._parallel import limit_torch_threads\n"
         "assert limit_torch_threads() is None\n"
         "assert sys.modules['dask'] is None and sys.modules['distributed'] is None\n")


def test_importing_fairskl_does_not_touch_cuda():
    """A parent that initialised CUDA cannot fork workers that use the GPU: imports stay away.

    Any call of the CUDA queries or of its lazy initialisation during the imports is recorded,
    so the test fails on a CPU-only torch too, where ``is_initialized()`` is always False.
    """
    _run("import traceback, torch, torch.cuda\n"
         "calls = []\n"
         "def spy(name, fn):\n"
         "    def wrapper(*args, **kwargs):\n"
         "        calls.append((name, ''.join(traceback.format_stack(limit=4))))\n"
         "        return fn(*args, **kwargs)\n"
         "    return wrapper\n"
         "for name in ['_lazy_init', 'init', 'is_available', 'device_count', 'current_device',\n"
         "             'set_device', 'get_device_name', 'get_device_properties']:\n"
         "    setattr(torch.cuda, name, spy(name, getattr(torch.cuda, name)))\n"
         + IMPORT_ALL +
         "assert not calls, calls\n"
         "assert not torch.cuda.is_initialized()\n")


def test_thread_helper_is_a_no_op_outside_dask():
    before = torch.get_num_threads()
    assert limit_torch_threads() is None
    assert torch.get_num_threads() == before
