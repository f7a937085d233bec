# Shim so that pip can install the package editable; see setup.cfg.
from setuptools import setup

setup()
