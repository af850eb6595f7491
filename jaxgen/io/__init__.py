"""File formats that jaxgen reads and writes without the libraries that made them."""
