"""Deterministic generators of small datasets in the real on-disk layouts.

Nothing here replaces a dataset class: the folders written by these functions
are read by mmpretrain's ``ImageNet``/``CustomDataset``, mmdet's
``CocoDataset`` (pycocotools) and mmseg's ``ADE20KDataset`` unchanged, exactly
as the real ImageNet, COCO and ADE20K folders are.

Two styles of scene (``STYLES``). In the default ``'shape'`` style an
object's class is its shape alone: colour and texture are drawn independently
of the class and unlabelled blobs clutter the background, so a model has to
learn outlines, which is where pretraining on the large unlabelled pool can
matter. In the ``'colour'`` style every class also has its own colour and
texture, so that any initialisation learns it within a few dozen steps: the
pipeline's tests use it. In both, objects of several scales (partly occluding
each other) sit on a cluttered background.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

# One entry per object class: (name, shape, RGB colour, texture). The colour
# and texture are drawn only in the ``'colour'`` style; in the ``'shape'``
# style both are random and the shape is the only cue. The ADE20K-style data
# labels these classes with real ADE20K class names (``ADE_CLASS_NAMES``).
OBJECT_CLASSES: Tuple[Tuple[str, str, Tuple[int, int, int], str], ...] = (
    ('circle', 'circle', (220, 40, 40), 'solid'),
    ('square', 'square', (40, 180, 60), 'stripes'),
    ('triangle', 'triangle', (40, 80, 220), 'solid'),
    ('star', 'star', (240, 200, 30), 'dots'),
    ('ring', 'ring', (200, 60, 200), 'solid'),
    ('cross', 'cross', (30, 200, 210), 'checker'),
)

# Semantic classes of the ADE20K-style data: index i of this tuple is drawn as
# OBJECT_CLASSES[i]; the value is the ADE20K class name it is labelled as.
ADE_CLASS_NAMES: Tuple[str, ...] = ('car', 'person', 'tree', 'lamp', 'plant',
                                    'signboard')


def ade20k_label_ids() -> List[int]:
    """Label values (1-based ADE20K ids) written for ``ADE_CLASS_NAMES``.

    Returns:
        list[int]: the pixel value of each class in the annotation PNGs; 0 is
        ADE20K's "other" label.
    """
    from mmseg.datasets import ADE20KDataset
    all_classes = list(ADE20KDataset.METAINFO['classes'])
    return [all_classes.index(name) + 1 for name in ADE_CLASS_NAMES]


@dataclass
class Instance:
    """One object in a generated scene.

    Attributes:
        label (int): index into ``OBJECT_CLASSES``.
        mask (np.ndarray): visible pixels (bool, HxW), after occlusion.
    """
    label: int
    mask: np.ndarray


def _shape_polygon(shape: str, cx: float, cy: float, r: float,
                   angle: float) -> np.ndarray:
    """Outline of ``shape`` (Nx2 float array of x, y) centred at cx, cy."""
    if shape in ('circle', 'ring'):
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        radius = np.full_like(t, r)
    elif shape == 'square':
        t = np.linspace(0, 2 * np.pi, 4, endpoint=False) + np.pi / 4
        radius = np.full_like(t, r)
    elif shape == 'triangle':
        t = np.linspace(0, 2 * np.pi, 3, endpoint=False) - np.pi / 2
        radius = np.full_like(t, r)
    elif shape == 'star':
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
        radius = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    elif shape == 'cross':
        # a plus sign: 12 corners
        a, b = r, 0.35 * r
        pts = np.array([(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b),
                        (b, a), (-b, a), (-b, b), (-a, b), (-a, -b),
                        (-b, -b)], dtype=np.float64)
        c, s = np.cos(angle), np.sin(angle)
        rot = pts @ np.array([[c, s], [-s, c]])
        return rot + np.array([cx, cy])
    else:
        raise ValueError(f'unknown shape {shape!r}')
    t = t + angle
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], 1)


def _rasterize(shape: str, cx: float, cy: float, r: float, angle: float,
               h: int, w: int) -> np.ndarray:
    """Full (unoccluded) bool mask of one object."""
    mask = np.zeros((h, w), np.uint8)
    poly = np.round(_shape_polygon(shape, cx, cy, r, angle)).astype(np.int32)
    cv2.fillPoly(mask, [poly], 1)
    if shape == 'ring':
        cv2.circle(mask, (int(round(cx)), int(round(cy))),
                   int(round(0.5 * r)), 0, -1)
    return mask.astype(bool)


# How a scene looks, per style. ``'shape'``: an object's class is its shape
# alone; colour (random HSV) and texture (one of ``TEXTURES`` in a second
# random colour) are drawn independently of the class, and unlabelled blobs
# clutter the background, so a model must learn outlines. ``'colour'``: each
# class has its own colour and texture (``OBJECT_CLASSES``), learnable from
# any initialisation in a few dozen steps; the tests of the pipeline use it.
STYLES: Dict[str, Dict] = {
    'shape': dict(radius=(0.09, 0.3), max_objects=4, blobs=(1, 4)),
    'colour': dict(radius=(0.06, 0.45), max_objects=6, blobs=(0, 0)),
}
TEXTURES: Tuple[str, ...] = ('solid', 'stripes', 'checker', 'dots',
                             'gradient')


def _check_style(style: str) -> Dict:
    if style not in STYLES:
        raise ValueError(f'unknown scene style {style!r}; choose one of '
                         f'{sorted(STYLES)}')
    return STYLES[style]


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour (floats 0-255) of uniform hue, saturation 0.3-1 and
    value 0.35-1."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0.3, 1) * 255,
                      rng.uniform(0.35, 1) * 255]]], np.float32)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return rgb.reshape(3).astype(np.float64)


def _texture(kind: str, colour: Sequence[float], h: int, w: int,
             rng: np.random.Generator,
             second: Optional[Sequence[float]] = None) -> np.ndarray:
    """An HxWx3 float image of ``colour`` with a texture.

    Without ``second`` the pattern darkens ``colour`` (the ``'colour'``
    style's fixed looks, with a small colour jitter); with it the pattern is
    drawn in ``second`` (the ``'shape'`` style).
    """
    if second is None:
        jitter = rng.uniform(-25, 25, size=3)
        base = np.clip(np.asarray(colour, np.float64) + jitter, 0, 255)
    else:
        base = np.asarray(colour, np.float64)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w]
    period = int(rng.integers(4, 8))
    if kind == 'stripes':
        on = ((xx + yy) // period) % 2 == 0
    elif kind == 'checker':
        on = ((xx // period) + (yy // period)) % 2 == 0
    elif kind == 'dots':
        on = ((xx % period) < 2) & ((yy % period) < 2)
    elif kind == 'gradient':
        if second is None:
            raise ValueError('a gradient needs a second colour')
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        t = ((t - t.min()) / max(np.ptp(t), 1e-6))[..., None]
        return (1 - t) * base + t * np.asarray(second, np.float64)
    elif kind == 'solid':
        return img
    else:
        raise ValueError(f'unknown texture {kind!r}')
    if second is None:
        img[on] *= {'stripes': 0.55, 'checker': 0.5, 'dots': 0.35}[kind]
    else:
        img[on] = np.asarray(second, np.float64)
    return img


def _random_look(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Random colour and texture (the ``'shape'`` style): HxWx3 floats."""
    kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
    return _texture(kind, _random_colour(rng), h, w, rng,
                    second=_random_colour(rng))


def _blob_polygon(cx: float, cy: float, r: float,
                  rng: np.random.Generator) -> np.ndarray:
    """A smooth random closed curve (Nx2 x, y): a circle whose radius is
    modulated by three low-frequency sines, so no class's shape."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    radius = np.ones_like(t)
    for k in (2, 3, 5):
        radius += rng.uniform(0, 0.35 / k * 2) * np.sin(
            k * t + rng.uniform(0, 2 * np.pi))
    radius = r * np.clip(radius, 0.3, None)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], 1)


def _background(h: int, w: int, rng: np.random.Generator,
                style: str = 'colour') -> np.ndarray:
    """Cluttered background: smooth colour field, noise and random strokes
    (grey in the ``'colour'`` style, coloured in the ``'shape'`` style, which
    also adds unlabelled blobs)."""
    look = _check_style(style)
    coarse = rng.uniform(60, 190, size=(4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img = img.astype(np.float64) + rng.normal(0, 12, size=(h, w, 3))
    canvas = np.ascontiguousarray(img)
    for _ in range(rng.integers(3, 8)):
        p1 = tuple(int(v) for v in rng.integers(0, [w, h]))
        p2 = tuple(int(v) for v in rng.integers(0, [w, h]))
        if style == 'colour':
            grey = float(rng.uniform(40, 200))
            colour = (grey, grey, grey)
        else:
            colour = tuple(float(v) for v in _random_colour(rng))
        cv2.line(canvas, p1, p2, colour, int(rng.integers(1, 3)))
    lo, hi = look['blobs']
    side = min(h, w)
    for _ in range(int(rng.integers(lo, hi + 1)) if hi else 0):
        r = rng.uniform(0.06, 0.2) * side
        poly = _blob_polygon(rng.uniform(0, w), rng.uniform(0, h), r, rng)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        mask = mask.astype(bool)
        canvas[mask] = _random_look(h, w, rng)[mask]
    return canvas


def make_scene(rng: np.random.Generator,
               height: int,
               width: int,
               max_objects: Optional[int] = None,
               crowd_prob: float = 0.0,
               style: str = 'colour',
               radius: Optional[Tuple[float, float]] = None
               ) -> Tuple[np.ndarray, List[Instance], List[Instance]]:
    """Draw one scene.

    Objects are painted back to front, so later ones occlude earlier ones; each
    returned mask is the object's visible part. Objects whose visible part is
    under 16 pixels are dropped (they are then fully hidden or nearly so).

    Args:
        rng: the random generator (the only source of randomness).
        height: image height.
        width: image width.
        max_objects: at most this many single objects (at least 1); None
            takes the style's.
        crowd_prob: probability of adding a crowd: a cluster of 4-8 small
            objects of one class that is annotated as one region.
        style: a key of ``STYLES``: ``'shape'`` (class = shape only) or
            ``'colour'`` (every class its own colour and texture).
        radius: (min, max) object radius as fractions of the shorter side,
            drawn log-uniformly; None takes the style's.

    Returns:
        tuple: uint8 HxWx3 RGB image, the single instances and the crowds
        (each crowd is one ``Instance`` whose mask is the union of its
        members' visible pixels).

    Raises:
        ValueError: unknown style.
    """
    look = _check_style(style)
    max_objects = look['max_objects'] if max_objects is None else max_objects
    r_lo, r_hi = look['radius'] if radius is None else radius
    img = _background(height, width, rng, style)
    side = min(height, width)
    items = []  # (label, full mask, crowd id or -1)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(len(OBJECT_CLASSES)))
        # log-uniform radius: several scales in every image
        r = float(
            np.exp(rng.uniform(np.log(r_lo * side), np.log(r_hi * side))))
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        items.append((label, _rasterize(OBJECT_CLASSES[label][1], cx, cy, r,
                                        rng.uniform(0, np.pi), height, width),
                      -1))
    n_crowds = 0
    if rng.random() < crowd_prob:
        label = int(rng.integers(len(OBJECT_CLASSES)))
        ccx, ccy = rng.uniform(0.25, 0.75) * width, rng.uniform(
            0.25, 0.75) * height
        for _ in range(int(rng.integers(4, 9))):
            r = rng.uniform(0.03, 0.05) * side
            cx = ccx + rng.normal(0, 0.08) * width
            cy = ccy + rng.normal(0, 0.08) * height
            items.append((label,
                          _rasterize(OBJECT_CLASSES[label][1], cx, cy, r,
                                     rng.uniform(0, np.pi), height, width),
                          0))
        n_crowds = 1
    # paint back to front and track the visible part of every item
    visible = []
    for label, mask, _ in items:
        if style == 'colour':
            _, _, colour, texture = OBJECT_CLASSES[label]
            tex = _texture(texture, colour, height, width, rng)
        else:
            tex = _random_look(height, width, rng)
        img[mask] = tex[mask]
        for v in visible:
            v &= ~mask
        visible.append(mask.copy())
    singles, crowds = [], [None] * n_crowds
    for (label, _, crowd), vis in zip(items, visible):
        if crowd >= 0:
            if crowds[crowd] is None:
                crowds[crowd] = Instance(label, vis.copy())
            else:
                crowds[crowd].mask |= vis
        elif vis.sum() >= 16:
            singles.append(Instance(label, vis))
    crowds = [c for c in crowds if c is not None and c.mask.sum() >= 16]
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, singles, crowds


def _write_jpg(path: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f'could not write image {path}')


def _polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons (x, y flattened) of a bool mask's outer contours."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    # a polygon needs at least 3 points (6 numbers) to be valid in COCO
    return [c.reshape(-1).astype(float).tolist() for c in contours
            if len(c) >= 3]


def _uncompressed_rle(mask: np.ndarray) -> Dict:
    """COCO's uncompressed RLE (column-major run lengths) of a bool mask."""
    flat = mask.astype(np.uint8).flatten(order='F')
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:  # runs always start with a run of zeros
        counts = [0] + counts
    return {'size': [int(mask.shape[0]), int(mask.shape[1])],
            'counts': [int(c) for c in counts]}


def _segm_area_bbox(segm, h: int, w: int) -> Tuple[int, List[float]]:
    """Area and box of a COCO segmentation, as pycocotools computes them."""
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    else:
        rle = mask_utils.frPyObjects(segm, h, w)
    return (int(mask_utils.area(rle)),
            [float(v) for v in mask_utils.toBbox(rle)])


def generate_coco(out_dir: str,
                  num_train: int = 48,
                  num_val: int = 16,
                  size: Tuple[int, int] = (128, 160),
                  seed: int = 0,
                  style: str = 'colour') -> Dict:
    """Write a COCO-2017-layout instance segmentation dataset.

    Layout: ``train2017/``, ``val2017/`` and
    ``annotations/instances_{train,val}2017.json``. Single objects are
    annotated with polygons (``iscrowd=0``); about one image in four also holds
    a crowd annotated with an uncompressed RLE (``iscrowd=1``), as in COCO.
    Category ids start at 1 and are not contiguous-from-0, as in COCO.

    Args:
        out_dir: the data root (created).
        num_train: number of training images.
        num_val: number of validation images.
        size: image (height, width).
        seed: random seed; the same seed writes the same files.
        style: how scenes look (a key of ``STYLES``).

    Returns:
        dict: what was written, per split: number of images, number of
        annotations per category name (crowds counted apart), and the summed
        area per category name, for checking against a loader.
    """
    _check_style(style)
    rng = np.random.default_rng(seed)
    h, w = size
    categories = [{'id': i + 1, 'name': name, 'supercategory': 'shape'}
                  for i, (name, *_) in enumerate(OBJECT_CLASSES)]
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    summary = {'categories': [c['name'] for c in categories]}
    ann_id = 1
    for split, num in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(out_dir, f'{split}2017')
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        counts = {c['name']: 0 for c in categories}
        crowd_counts = dict(counts)
        areas = dict(counts)
        for i in range(num):
            img, singles, crowds = make_scene(
                rng, h, w, crowd_prob=0.25, style=style)
            img_id = i + 1
            file_name = f'{img_id:012d}.jpg'
            _write_jpg(osp.join(img_dir, file_name), img)
            images.append({'id': img_id, 'file_name': file_name,
                           'height': h, 'width': w})
            for inst, crowd in [(s, 0) for s in singles] + [(c, 1)
                                                            for c in crowds]:
                segm = (_uncompressed_rle(inst.mask) if crowd
                        else _polygons(inst.mask))
                if not segm:
                    continue
                area, bbox = _segm_area_bbox(segm, h, w)
                if area == 0 or bbox[2] < 1 or bbox[3] < 1:
                    continue
                name = OBJECT_CLASSES[inst.label][0]
                annotations.append({
                    'id': ann_id, 'image_id': img_id,
                    'category_id': inst.label + 1, 'segmentation': segm,
                    'area': area, 'bbox': bbox, 'iscrowd': crowd})
                ann_id += 1
                (crowd_counts if crowd else counts)[name] += 1
                areas[name] += area
        with open(osp.join(out_dir, 'annotations',
                           f'instances_{split}2017.json'), 'w') as f:
            json.dump({'info': {'description': 'mim_pretrain synthetic COCO'},
                       'licenses': [], 'images': images,
                       'annotations': annotations,
                       'categories': categories}, f)
        summary[split] = {'num_images': num, 'instances': counts,
                          'crowds': crowd_counts, 'areas': areas}
    return summary


def _write_ade20k_split(root: str, split: str, num: int, tag: str,
                        make: Callable[[], Tuple[np.ndarray, np.ndarray]]
                        ) -> Dict[str, List[int]]:
    """Write ``num`` (image, label map) pairs from ``make()`` as one
    ADE20K-layout split under ``root``; the label values per file stem."""
    img_dir = osp.join(root, 'images', split)
    ann_dir = osp.join(root, 'annotations', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    labels = {}
    for i in range(num):
        img, seg = make()
        stem = f'ADE_{split[:5]}_{tag}_{i + 1:08d}'
        _write_jpg(osp.join(img_dir, stem + '.jpg'), img)
        if not cv2.imwrite(osp.join(ann_dir, stem + '.png'), seg):
            raise OSError(f'could not write {ann_dir}/{stem}.png')
        labels[stem] = sorted(int(v) for v in np.unique(seg))
    return labels


def generate_ade20k(out_dir: str,
                    num_train: int = 48,
                    num_val: int = 16,
                    size: Tuple[int, int] = (128, 128),
                    seed: int = 0,
                    style: str = 'colour') -> Dict:
    """Write an ADE20K-layout semantic segmentation dataset.

    Layout (``out_dir`` is the data root): ``ADEChallengeData2016/images/
    {training,validation}/ADE_*.jpg`` and ``ADEChallengeData2016/
    annotations/{training,validation}/ADE_*.png``. Pixel values are real
    ADE20K class ids (see ``ADE_CLASS_NAMES``), 0 is "other" (the background
    clutter), so mmseg's ``ADE20KDataset`` with ``reduce_zero_label=True``
    reads them as it reads the real data.

    Args:
        out_dir: the data root (created).
        num_train: number of training images.
        num_val: number of validation images.
        size: image (height, width).
        seed: random seed; the same seed writes the same files.
        style: how scenes look (a key of ``STYLES``).

    Returns:
        dict: per split, the number of images and, per image file stem, the
        sorted list of label values present (0 included), for checking.
    """
    _check_style(style)
    rng = np.random.default_rng(seed + 1)
    ids = ade20k_label_ids()
    h, w = size
    root = osp.join(out_dir, 'ADEChallengeData2016')
    summary = {'classes': list(ADE_CLASS_NAMES), 'label_ids': ids}

    def scene() -> Tuple[np.ndarray, np.ndarray]:
        img, singles, _ = make_scene(rng, h, w, style=style)
        seg = np.zeros((h, w), np.uint8)
        for inst in singles:  # visible masks do not overlap
            seg[inst.mask] = ids[inst.label]
        return img, seg

    for split, num in (('training', num_train), ('validation', num_val)):
        labels = _write_ade20k_split(root, split, num, 'synthetic', scene)
        summary[split] = {'num_images': num, 'labels': labels}
    return summary


def generate_imagenet(out_dir: str,
                      num_images: int = 256,
                      size: int = 96,
                      num_classes: int = 4,
                      seed: int = 0,
                      style: str = 'colour',
                      num_val: int = 32) -> Dict:
    """Write an ImageNet-layout image folder: a training set for
    self-supervised pretraining and classification, and a validation set.

    Layout: ``train/<wnid>/<wnid>_<n>.JPEG`` plus ``meta/train.txt`` (one
    ``relative/path label`` line per image), the two forms mmpretrain's
    ``ImageNet`` and ``CustomDataset`` read; ``val/ILSVRC2012_val_<n>.JPEG``
    (one flat folder, as the real validation set) plus ``meta/val.txt``,
    what mmpretrain's ``ImageNet(split='val')`` reads. The class is the class
    of the image's largest object; pretraining ignores it. The validation
    images come from a random stream of their own, so the training set is
    the same whatever ``num_val`` is.

    Args:
        out_dir: the data root (created).
        num_images: number of training images.
        size: side of the square images.
        num_classes: number of classes (training folders).
        seed: random seed; the same seed writes the same files.
        style: how scenes look (a key of ``STYLES``).
        num_val: number of validation images (0: no ``val/``).

    Returns:
        dict: number of training images, class folder names, training
        images per folder, and ``val``: the number of validation images and
        images per class.
    """
    _check_style(style)
    rng = np.random.default_rng(seed + 2)
    wnids = [f'n{i:08d}' for i in range(num_classes)]
    for wnid in wnids:
        os.makedirs(osp.join(out_dir, 'train', wnid), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'meta'), exist_ok=True)
    per_class = {wnid: 0 for wnid in wnids}
    lines = []
    for i in range(num_images):
        img, singles, _ = make_scene(rng, size, size, style=style)
        label = (max(singles, key=lambda s: s.mask.sum()).label
                 if singles else 0) % num_classes
        wnid = wnids[label]
        rel = f'{wnid}/{wnid}_{i:06d}.JPEG'
        _write_jpg(osp.join(out_dir, 'train', rel), img)
        lines.append(f'{rel} {label}')
        per_class[wnid] += 1
    with open(osp.join(out_dir, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return {'num_images': num_images, 'classes': wnids,
            'per_class': per_class,
            'val': _imagenet_val(out_dir, num_val, size, wnids, seed, style)}


def _imagenet_val(out_dir: str, num: int, size: int, wnids: List[str],
                  seed: int, style: str) -> Dict:
    """Write ``val/`` and ``meta/val.txt`` of :func:`generate_imagenet`
    from their own random stream; return the count and images per class.
    """
    per_class = {wnid: 0 for wnid in wnids}
    if num <= 0:
        return {'num_images': 0, 'per_class': per_class}
    # a stream of its own: the training images do not depend on num_val
    rng = np.random.default_rng([seed + 2, 1])
    os.makedirs(osp.join(out_dir, 'val'), exist_ok=True)
    lines = []
    for i in range(num):
        img, singles, _ = make_scene(rng, size, size, style=style)
        label = (max(singles, key=lambda s: s.mask.sum()).label
                 if singles else 0) % len(wnids)
        name = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
        _write_jpg(osp.join(out_dir, 'val', name), img)
        lines.append(f'{name} {label}')
        per_class[wnids[label]] += 1
    with open(osp.join(out_dir, 'meta', 'val.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return {'num_images': num, 'per_class': per_class}


# Images written by ``generate_all`` per style. ``'shape'``: a pretraining
# pool many times larger than the label-scarce transfer sets, and validation
# sets large enough for a small seed-to-seed range. ``'colour'``: the small
# sets the pipeline tests use. ``imagenet_val``: the ImageNet-layout
# validation images (classification), apart from the pool.
DEFAULT_COUNTS: Dict[str, Dict[str, int]] = {
    'shape': dict(pool=4000, coco_train=64, coco_val=100, ade_train=64,
                  ade_val=100, imagenet_val=200),
    'colour': dict(pool=256, coco_train=48, coco_val=16, ade_train=48,
                   ade_val=16, imagenet_val=32),
}


def generate_all(root: str,
                 seed: int = 0,
                 scale: Optional[float] = None,
                 style: str = 'shape',
                 counts: Optional[Dict[str, int]] = None) -> Dict:
    """Write the three built-in datasets under ``root``.

    ``root/imagenet`` (``train/`` and ``val/``), ``root/coco`` and
    ``root/ade`` (which holds ``ADEChallengeData2016``), and
    ``root/summary.json`` with what the generators returned.

    Args:
        root: where to write.
        seed: random seed.
        scale: multiply the image counts by this (None = 1).
        style: how scenes look (a key of ``STYLES``); it also picks the
            default counts (``DEFAULT_COUNTS``).
        counts: image counts overriding the style's, with the keys of
            ``DEFAULT_COUNTS`` (``pool``, ``coco_train``, ``coco_val``,
            ``ade_train``, ``ade_val``, ``imagenet_val``).

    Returns:
        dict: the summary written to ``summary.json``.

    Raises:
        ValueError: unknown style or count key.
    """
    _check_style(style)
    want = dict(DEFAULT_COUNTS[style])
    unknown = set(counts or {}) - set(want)
    if unknown:
        raise ValueError(f'unknown image count keys {sorted(unknown)}; '
                         f'expected some of {sorted(want)}')
    want.update(counts or {})
    k = 1.0 if scale is None else float(scale)
    n = {key: max(1, int(round(v * k))) for key, v in want.items()}
    # the shape style's folders are the shapes (the largest object's class)
    folders = len(OBJECT_CLASSES) if style == 'shape' else 4
    summary = {
        'seed': seed,
        'style': style,
        'imagenet': generate_imagenet(osp.join(root, 'imagenet'),
                                      num_images=n['pool'],
                                      num_classes=folders, seed=seed,
                                      style=style,
                                      num_val=n['imagenet_val']),
        'coco': generate_coco(osp.join(root, 'coco'),
                              num_train=n['coco_train'],
                              num_val=n['coco_val'],
                              seed=seed, style=style),
        'ade20k': generate_ade20k(osp.join(root, 'ade'),
                                  num_train=n['ade_train'],
                                  num_val=n['ade_val'],
                                  seed=seed, style=style),
    }
    with open(osp.join(root, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def generate_texture_ade20k(out_dir: str,
                            num_train: int = 64,
                            num_val: int = 32,
                            size: int = 96,
                            seed: int = 0) -> Dict:
    """Write an ADE20K-layout dataset whose classes are textures.

    Every image is cut at a random point into four rectangles, each filled
    with one of ``TEXTURES`` in two random colours; a pixel's label is its
    rectangle's texture (``TEXTURES[i]`` is written as ``ADE_CLASS_NAMES[i]``,
    so the last class never occurs). Colour says nothing about the class and
    a texture's phase and period vary, so a linear read-out of the pixels
    does not separate the classes, while an encoder that learned to
    reconstruct the textured scenes of the pretraining pool has features
    for them: the data of :mod:`mim_pretrain.apis.transfer_check`.

    Args:
        out_dir: the data root (created); ``ADEChallengeData2016`` goes in it.
        num_train: number of training images.
        num_val: number of validation images.
        size: image side (px).
        seed: random seed; the same seed writes the same files.

    Returns:
        dict: per split the number of images, and the classes.
    """
    rng = np.random.default_rng(seed + 7)
    ids = ade20k_label_ids()
    root = osp.join(out_dir, 'ADEChallengeData2016')
    summary = {'classes': list(ADE_CLASS_NAMES[:len(TEXTURES)]),
               'textures': list(TEXTURES)}

    def quadrants() -> Tuple[np.ndarray, np.ndarray]:
        img = np.zeros((size, size, 3))
        seg = np.zeros((size, size), np.uint8)
        cy, cx = rng.integers(size // 3, 2 * size // 3 + 1, size=2)
        for ys in (slice(0, cy), slice(cy, size)):
            for xs in (slice(0, cx), slice(cx, size)):
                k = int(rng.integers(len(TEXTURES)))
                h, w = ys.stop - ys.start, xs.stop - xs.start
                img[ys, xs] = _texture(TEXTURES[k], _random_colour(rng), h, w,
                                       rng, second=_random_colour(rng))
                seg[ys, xs] = ids[k]
        return np.clip(img, 0, 255).astype(np.uint8), seg

    for split, num in (('training', num_train), ('validation', num_val)):
        _write_ade20k_split(root, split, num, 'texture', quadrants)
        summary[split] = {'num_images': num}
    return summary
