"""TensorFlow twins of the built-in families and their Horovod backend.

Imported only in processes that run TensorFlow. It keeps TensorFlow's C++ log lines off the
terminal unless the user asks for them with TF_CPP_MIN_LOG_LEVEL=0: by default level 2 drops the
runtime's INFO and WARNING lines (XLA start-up, compiled clusters), and at any level above 0 the
INFO lines its libraries log while they load (the oneDNN notice, written before any log level
applies) are held back, and shown only if the import fails.

Where torch's CUDA build is installed (the GPU image), its Triton is loaded first: Triton and
TensorFlow each carry LLVM, and Triton loaded after TensorFlow aborts the process ("LLVM ERROR:
inconsistency in registered CommandLine options"), as it would where both frameworks meet
(check-family, transformers' pairs, torch.compile).
"""

import importlib.util
import os
import sys
import tempfile

if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401

if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") != "0" and "tensorflow" not in sys.modules:
    _stderr = os.dup(2)
    with tempfile.TemporaryFile() as _held:
        os.dup2(_held.fileno(), 2)  # the C++ libraries write to file descriptor 2, not to sys.stderr
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(_stderr, 2)
            _held.seek(0)
            sys.stderr.buffer.write(_held.read())
            raise
        finally:
            os.dup2(_stderr, 2)
            os.close(_stderr)
