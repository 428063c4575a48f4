"""TensorFlow twins of the built-in families and their Horovod backend.

Imported only in processes that run TensorFlow. It keeps TensorFlow's C++ log lines off the
terminal unless the user asks for them with TF_CPP_MIN_LOG_LEVEL=0: by default level 2 drops the
runtime's INFO and WARNING lines (XLA start-up, compiled clusters), and at any level above 0 the
INFO lines its libraries log while they load (the oneDNN notice, written before any log level
applies) are held back, and shown only if the import fails.
"""

import os
import sys
import tempfile

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
