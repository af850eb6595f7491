"""jaxgen: a pure-functional JAX/Flax library of deep generative models.

Importing jaxgen registers its offline TFDS data sets ('digits', 'shapes', jaxgen.data), so that
`import jaxgen; tfds.load('shapes')` works as for any TFDS data set (tensorflow_datasets is imported, about 0.4 s;
TensorFlow and JAX are not).
"""

__version__ = "0.1.0"

from jaxgen import data as _data  # noqa: E402,F401  (registers the TFDS builders)
