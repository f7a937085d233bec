"""Version of the mim_pretrain package."""
__version__ = '0.1.0'
