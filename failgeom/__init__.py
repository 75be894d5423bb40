"""failgeom: reproduce and verify "Failures of Gradient-Based Deep Learning" in pure NumPy.

Shalev-Shwartz, Shamir and Shammah, ICML 2017 (arXiv 1703.07950). Subpackages: ``nn`` (network
parts with hand-written gradients over a replica axis), ``theory`` (closed forms and exact
numerics for each theorem), ``problems`` (data generators), ``experiments`` (one module per
paper experiment).
"""

__version__ = "0.1.0"
