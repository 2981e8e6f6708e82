"""faceedit: facial expression editing with a face parser and a hierarchical GAN trained as one model."""

__version__ = "0.1.0"
