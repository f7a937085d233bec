# Shim so that pip can install the package; metadata is in setup.cfg.
#
# A regular (non-editable) install also ships the tools, the configs and
# model-index.yml inside the package as ``mim_pretrain/.mim/``, the layout
# OpenMMLab's ``mim`` looks in, so ``mim train mim_pretrain CONFIG`` finds
# ``tools/train.py`` and the config by its file name (docs/tools.md).
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
# what goes into mim_pretrain/.mim/, relative to the repository root
MIM_PARTS = ('tools', 'mmpretrain_configs', 'mmdet_configs', 'mmseg_configs',
             'model-index.yml')


def copy_mim_parts(package_dir: str) -> list:
    """Copy ``MIM_PARTS`` into ``package_dir/.mim``.

    Args:
        package_dir: the built ``mim_pretrain`` folder.

    Returns:
        list: the parts copied (a missing optional part is skipped).
    """
    mim_dir = osp.join(package_dir, '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    copied = []
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
    for part in MIM_PARTS:
        src = osp.join(HERE, part)
        dst = osp.join(mim_dir, part)
        if osp.isdir(src):
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=ignore)
        elif osp.isfile(src):
            shutil.copyfile(src, dst)
        else:
            continue
        copied.append(part)
    return copied


class BuildWithMimParts(build_py):
    """``build_py`` that also writes ``mim_pretrain/.mim``; editable
    installs do not run it (they import the package from the checkout)."""

    def run(self):
        super().run()
        if not self.editable_mode:
            copy_mim_parts(osp.join(self.build_lib, 'mim_pretrain'))


setup(cmdclass={'build_py': BuildWithMimParts})
