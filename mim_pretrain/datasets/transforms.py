"""Loading transforms that check their input, for configs that opt in.

Upstream, what a cut-short image gives depends on the decoder: some OpenCV
builds decode a truncated JPEG with a grey bottom and only a warning,
OpenCV 4.12 gives no image (``LoadImageFromFile`` then fails a bare assert
that ``ignore_empty=True`` does not skip), Pillow decodes a PNG that lacks
its end without a word; decoder errors name no file. mmseg's losses fail on
label values beyond the class count with an index error that names no file
(on a GPU, a device-side assert). These transforms are the upstream ones
plus checks; a pipeline opts in by naming them::

    dict(type='CheckedLoadImageFromFile'),  # instead of LoadImageFromFile
    dict(type='CheckedLoadAnnotations', num_classes=150,
         reduce_zero_label=True),           # instead of mmseg's
                                            # LoadAnnotations

Every config of this repository does; a pipeline that names the upstream
transforms gets upstream's behaviour.
"""
import logging
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmseg.datasets.transforms import LoadAnnotations as SegLoadAnnotations

from ..registry import register_seg_transform, register_transform

_JPEG_SOI, _PNG_SIG = b'\xff\xd8', b'\x89PNG\r\n\x1a\n'
# images skipped under ignore_empty=True in this process, for the log
_skipped = {'count': 0}


def truncation_error(content: bytes) -> Optional[str]:
    """Why encoded JPEG/PNG bytes are truncated, or None when complete.

    A JPEG must have an end-of-image marker after its last start-of-scan
    (0xFF is byte-stuffed inside scans, so the marker cannot occur there);
    a PNG must have its ``IEND`` chunk. Other formats are not judged.

    Args:
        content: the encoded image file.

    Returns:
        str | None: the problem, or None.
    """
    head = bytes(content[:8])
    if head.startswith(_JPEG_SOI):
        sos = content.rfind(b'\xff\xda')
        if sos < 0 or content.find(b'\xff\xd9', sos) < 0:
            return 'truncated JPEG (no end-of-image marker after the scan)'
    elif head == _PNG_SIG and content.rfind(b'IEND') < 0:
        return 'truncated PNG (no IEND chunk)'
    return None


def _with_path(error: Exception, what: str) -> Exception:
    """``error`` with ``what`` (naming the file) in front of its message,
    or ``error`` itself when its type cannot be rebuilt from a message."""
    try:
        return type(error)(f'{what}: {error}')
    except Exception:
        return error


@register_transform()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that refuses truncated images and names
    the file in every load error.

    Same arguments and outputs as ``LoadImageFromFile``. Before decoding,
    JPEG bytes are checked for their end-of-image marker after the last scan
    and PNG bytes for their ``IEND`` chunk (:func:`truncation_error`); bytes
    the decoder cannot read are an error too. Any error is re-raised as
    ``failed to load image PATH: ...``. With ``ignore_empty=True`` such
    images are skipped (the transform returns None, as upstream's) and each
    skip is logged with the number skipped so far in this process.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Args:
            results: the sample; needs ``img_path``.

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape`` and
            ``ori_shape``; None for a skipped image (``ignore_empty``).
        """
        path = results['img_path']
        try:
            img = self._decode(self._read(path))
        except Exception as e:
            if not self.ignore_empty:
                raise _with_path(e, f'failed to load image {path}') from e
            _skipped['count'] += 1
            print_log(
                f'{type(self).__name__}(ignore_empty=True): skipped '
                f'unreadable image {path} ({_skipped["count"]} skipped so '
                'far in this process)', logger='current',
                level=logging.WARNING)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _read(self, path: str) -> bytes:
        """The file's bytes, through the storage backend upstream uses."""
        if getattr(self, 'file_client_args', None) is not None:
            client = fileio.FileClient.infer_client(self.file_client_args,
                                                    path)
            return client.get(path)
        return fileio.get(path, backend_args=self.backend_args)

    def _decode(self, content: bytes) -> np.ndarray:
        """Decode complete image bytes as upstream does."""
        problem = truncation_error(content)
        if problem:
            raise ValueError(problem)
        img = mmcv.imfrombytes(
            content, flag=self.color_type, backend=self.imdecode_backend)
        if img is None:
            raise ValueError('the bytes could not be decoded as an image')
        return img


def check_labels(labels: np.ndarray, num_classes: int, path: str,
                 ignore_index: int = 255) -> None:
    """Raise when a label map holds values that are not classes.

    Args:
        labels: the label map (after ``reduce_zero_label`` / ``label_map``).
        num_classes: the dataset's class count.
        path: the label file, for the message.
        ignore_index: the value that marks ignored pixels.

    Raises:
        ValueError: names the file, the bad values and the valid range.
    """
    labels = np.asarray(labels)
    bad = (labels >= num_classes) & (labels != ignore_index)
    if bad.any():
        values = np.unique(labels[bad]).tolist()
        raise ValueError(
            f'label map {path} has values {values[:10]} that are not classes '
            f'of this dataset ({num_classes} classes: 0-{num_classes - 1}, '
            f'{ignore_index} = ignore, after reduce_zero_label/label_map). '
            'Check the annotation files and the dataset\'s classes / '
            'reduce_zero_label settings.')


@register_seg_transform()
class CheckedLoadAnnotations(SegLoadAnnotations):
    """mmseg's ``LoadAnnotations`` that names the label file in every load
    error and checks the labels against the dataset's classes.

    After upstream's loading (``reduce_zero_label`` and the dataset's
    ``label_map`` applied), every value must be a class index
    (``0 .. num_classes - 1``) or ``ignore_index``; otherwise a
    ``ValueError`` names the file, the bad values and the valid range
    (:func:`check_labels`).

    Args:
        num_classes: the dataset's class count (``len(classes)`` of its
            metainfo; ADE20K: 150).
        ignore_index: the label of ignored pixels (mmseg's 255).
        **kwargs: mmseg's ``LoadAnnotations`` arguments
            (``reduce_zero_label``, ``backend_args``, ``imdecode_backend``).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        """Load ``results['seg_map_path']`` and check its values."""
        path = results.get('seg_map_path')
        try:
            super()._load_seg_map(results)
        except Exception as e:
            raise _with_path(e, f'failed to load label map {path}') from e
        check_labels(results['gt_seg_map'], self.num_classes, path,
                     self.ignore_index)

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
