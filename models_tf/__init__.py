"""TensorFlow twins of the built-in families and their Horovod backend.

Imported only in processes that run TensorFlow. Unless the user sets TF_CPP_MIN_LOG_LEVEL, it
keeps TensorFlow's C++ log lines off the terminal: level 2 drops the runtime's INFO and WARNING
lines (XLA start-up, compiled clusters), and the lines its libraries log while they load (the
oneDNN notice, written before any log level applies) are held back, and shown only if the import
fails.
"""

import os
import sys
import tempfile

if "TF_CPP_MIN_LOG_LEVEL" not in os.environ and "tensorflow" not in sys.modules:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
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
