"""TensorFlow twin of the Transformer LM and its Horovod backend."""
