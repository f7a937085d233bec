"""Inference on single images with this toolkit's configs and checkpoints,
and ``tools/demo.py``.

    python tools/demo.py CONFIG CHECKPOINT IMAGE [IMAGE ...] \
        [--out-dir outputs] [--device cpu] [--score-thr 0.3]

:func:`init_inferencer` returns the inferencer that fits the config's kind
(:func:`~mim_pretrain.apis.run.task_of`):

* ``mmdet``: :class:`DetectionInferencer`, mmdet's ``DetInferencer``;
* ``mmseg``: :class:`SegmentationInferencer`, mmseg's ``MMSegInferencer``;
* ``mmpretrain`` with an ``ImageClassifier`` (the fine-tuning and
  linear-probe configs): :class:`ClassificationInferencer`, mmpretrain's
  ``ImageClassificationInferencer``;
* ``mmpretrain`` pretraining: :class:`ReconstructionInferencer`, which
  draws what a LoMaR, LocalMIM or MAE model reconstructs (the grids of
  ``tools/analysis/visualize_reconstruction.py``). mmpretrain has no
  inferencer for masked image modeling: its ``FeatureExtractor`` needs a
  ``test_dataloader``, which pretraining configs do not have, and draws
  nothing.

The first three are the upstream inferencers, unchanged in use, with what
this toolkit's configs and checkpoints need on top:

* the checkpoint the caller names is trusted for full (pickle) loading, as
  ``tools/test.py CONFIG CKPT`` trusts its checkpoint
  (:func:`mim_pretrain.compat.trust_checkpoint`), so a training checkpoint
  loads; upstream's loader cannot tell it from a file nobody vouched for;
* a checkpoint that does not fit the config's model is an error listing the
  missing and misshapen keys (upstream loads it non-strictly, with a log
  line, and predicts with random weights);
* the class names come from the checkpoint's ``meta['dataset_meta']``
  (training checkpoints and files of ``extract_weights.py`` have it), else
  from the config's test dataset, with a warning: upstream falls back to the
  COCO or Cityscapes classes whatever the model was trained on. A class list
  whose length differs from the model's class count is an error;
* the pipelines' ``CheckedLoadImageFromFile`` (and mmseg's
  ``CheckedLoadAnnotations``) are recognised: upstream looks for
  ``LoadImageFromFile`` by name and refuses the pipeline otherwise;
* every image is checked before inference, and a missing, truncated or
  undecodable one is an error naming the file;
* detection results carry ``label_names`` beside ``labels``.
"""
import argparse
import copy
import logging
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
import torch
from mmdet.apis import DetInferencer
from mmengine.config import Config, DictAction
from mmengine.fileio import dump
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from mmpretrain.apis import ImageClassificationInferencer
from mmseg.apis import MMSegInferencer

from .. import compat
from ..converters.io import checkpoint_state_dict
from ..datasets.transforms import truncation_error
from .reconstruction import DRAWERS, _grid, _train_size, build_model
from .run import check_state_matches, task_of

# the image loaders of this toolkit's pipelines -> the upstream one they
# extend, which the upstream inferencers look for by name
LOADERS = {'CheckedLoadImageFromFile': 'LoadImageFromFile'}
# annotation loaders the inferencers drop (there is no annotation)
ANNOTATION_LOADERS = ('CheckedLoadAnnotations', )


def check_images(paths: Sequence[Any]) -> None:
    """Check that each image file exists and decodes.

    Args:
        paths: the inputs; strings are image files, anything else (arrays)
            is not checked.

    Raises:
        FileNotFoundError: a file does not exist.
        ValueError: a path is a directory, or the file is truncated or not
            an image.
    """
    for path in paths:
        if not isinstance(path, str):
            continue
        if osp.isdir(path):
            raise ValueError(f'{path} is a directory, not an image file')
        if not osp.isfile(path):
            raise FileNotFoundError(f'image not found: {path}')
        with open(path, 'rb') as f:
            content = f.read()
        problem = truncation_error(content)
        if problem is None and mmcv.imfrombytes(content) is None:
            problem = 'not an image this build of OpenCV can decode'
        if problem:
            raise ValueError(f'cannot read image {path}: {problem}')


def _short_type(step: dict) -> str:
    """A transform's type without its scope prefix (``mmdet.X`` -> ``X``)."""
    kind = step.get('type')
    return kind.rsplit('.', 1)[-1] if isinstance(kind, str) else ''


def _inference_pipeline(cfg: Config) -> None:
    """Make the test pipeline one the upstream inferencers accept (in place):
    this toolkit's loaders under the upstream name, no annotation loader."""
    pipeline = cfg.test_dataloader.dataset.pipeline
    kept = []
    for step in pipeline:
        kind = _short_type(step)
        if kind in ANNOTATION_LOADERS:
            continue
        if kind in LOADERS:
            step = dict(step, type=LOADERS[kind])
        kept.append(step)
    cfg.test_dataloader.dataset.pipeline = kept


def _with_meta(checkpoint: dict, dataset_meta: dict) -> dict:
    """``{'state_dict': ..., 'meta': {'dataset_meta': ...}}`` of a loaded
    checkpoint, the form upstream's loading reads (it takes a file without a
    ``state_dict`` entry, such as ``{'model': ...}``, for a bare state
    dict)."""
    return dict(state_dict=checkpoint_state_dict(checkpoint),
                meta=dict(dataset_meta=dataset_meta))


def _model_num_classes(model: torch.nn.Module) -> Optional[int]:
    """The class count of a Mask R-CNN, UperNet or classifier, or None
    when the model has no head that states one."""
    for owner, attr in (('roi_head', 'bbox_head'), ('decode_head', None),
                        ('bbox_head', None), ('head', None)):
        head = getattr(model, owner, None)
        if head is not None and attr is not None:
            head = getattr(head, attr, None)
        if head is not None and isinstance(
                getattr(head, 'num_classes', None), int):
            return head.num_classes
    return None


def _config_metainfo(cfg: Config, registry) -> dict:
    """The metainfo of the config's test dataset (classes, palette), read
    without loading its annotations."""
    dataset = cfg.test_dataloader.dataset.copy()
    dataset['lazy_init'] = True
    return dict(registry.build(dataset).metainfo)


def _dataset_meta(checkpoint: dict, cfg: Config, registry, path: str,
                  model: torch.nn.Module) -> dict:
    """Classes and palette for the model: the checkpoint's
    ``meta['dataset_meta']``, else the config's test dataset (warned).

    Raises:
        ValueError: the class list's length differs from the model's class
            count.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    found = meta.get('dataset_meta') if isinstance(meta, dict) else None
    # mmdet 3 wants lower-case keys (older files wrote CLASSES, PALETTE)
    found = {str(k).lower(): v for k, v in found.items()} if isinstance(
        found, dict) else {}
    if found.get('classes'):
        dataset_meta = found
        source = f'{path} (meta.dataset_meta)'
    else:
        dataset_meta = _config_metainfo(cfg, registry)
        source = f'the test dataset of {cfg.filename}'
        print_log(f'{path} carries no class names (meta.dataset_meta); '
                  f'using those of {source}: '
                  f'{list(dataset_meta.get("classes", []))}',
                  logger='current', level=logging.WARNING)
    classes = dataset_meta.get('classes')
    count = _model_num_classes(model)
    if count is not None and (not classes or len(classes) != count):
        raise ValueError(
            f'the class names of {source} are {len(classes or ())} '
            f'({list(classes or ())[:10]}...), but the model of '
            f'{cfg.filename} predicts {count} classes: the checkpoint was '
            'trained on another dataset or config')
    return dataset_meta


class DetectionInferencer(DetInferencer):
    """mmdet's ``DetInferencer`` for this toolkit's detection configs and
    checkpoints (see the module docstring for what it adds).

    Args:
        model: the config (file or loaded).
        weights: the checkpoint; trusted for full loading.
        device: the torch device; None picks one as upstream.
        **kwargs: other arguments of ``DetInferencer`` (``palette``,
            ``show_progress``).
    """

    def __init__(self, model: Union[str, Config], weights: str,
                 device: Optional[str] = None, **kwargs) -> None:
        if not weights:
            raise ValueError('a checkpoint is needed: upstream would predict '
                             'with randomly initialised weights')
        self._weights = weights
        super().__init__(model=model, weights=weights, device=device,
                         scope='mmdet', **kwargs)

    def _load_weights_to_model(self, model: torch.nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[Config]) -> None:
        """Upstream's loading after checking the checkpoint fits, with the
        class names of the checkpoint or config (not COCO's)."""
        from mmdet.registry import DATASETS
        check_state_matches(model, checkpoint, self._weights, cfg.filename)
        dataset_meta = _dataset_meta(checkpoint, cfg, DATASETS,
                                     self._weights, model)
        super()._load_weights_to_model(
            model, _with_meta(checkpoint, dataset_meta), cfg)

    def _init_pipeline(self, cfg: Config):
        _inference_pipeline(cfg)
        return super()._init_pipeline(cfg)

    def _inputs_to_list(self, inputs) -> list:
        listed = super()._inputs_to_list(inputs)
        check_images(listed)
        return listed

    def pred2dict(self, data_sample, pred_out_dir: str = '') -> Dict:
        """Upstream's result dict with ``label_names``, the class name of
        each label; written to ``pred_out_dir/preds/`` as upstream."""
        result = super().pred2dict(data_sample, '')
        classes = self.model.dataset_meta['classes']
        if 'labels' in result:
            result['label_names'] = [classes[i] for i in result['labels']]
        if pred_out_dir:
            if 'img_path' in data_sample:
                name = osp.splitext(osp.basename(data_sample.img_path))[0]
            else:
                name = str(self.num_predicted_imgs)
                self.num_predicted_imgs += 1
            dump(result, osp.join(pred_out_dir, 'preds', name + '.json'))
        return result


class SegmentationInferencer(MMSegInferencer):
    """mmseg's ``MMSegInferencer`` for this toolkit's segmentation configs
    and checkpoints (see the module docstring for what it adds).

    Args:
        model: the config (file or loaded).
        weights: the checkpoint; trusted for full loading.
        device: the torch device; None picks one as upstream.
        **kwargs: other arguments of ``MMSegInferencer``.
    """

    def __init__(self, model: Union[str, Config], weights: str,
                 device: Optional[str] = None, **kwargs) -> None:
        if not weights:
            raise ValueError('a checkpoint is needed: upstream would predict '
                             'with randomly initialised weights')
        self._weights = weights
        super().__init__(model=model, weights=weights, device=device,
                         scope='mmseg', **kwargs)

    def _load_weights_to_model(self, model: torch.nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[Config]) -> None:
        """Upstream's loading after checking the checkpoint fits, with the
        class names and palette of the checkpoint or config (not
        Cityscapes')."""
        from mmseg.registry import DATASETS
        check_state_matches(model, checkpoint, self._weights, cfg.filename)
        dataset_meta = _dataset_meta(checkpoint, cfg, DATASETS,
                                     self._weights, model)
        classes = dataset_meta['classes']
        palette = dataset_meta.get('palette')
        if not palette or len(palette) != len(classes):
            # mmseg's visualizer needs one colour per class
            palette = _config_metainfo(cfg, DATASETS).get('palette')
            if not palette or len(palette) != len(classes):
                rng = np.random.RandomState(0)
                palette = [tuple(c) for c in
                           rng.randint(0, 256, (len(classes), 3)).tolist()]
                print_log(f'{self._weights}: no palette of '
                          f'{len(classes)} colours in the checkpoint or '
                          'config; drawing with random colours (seed 0)',
                          logger='current', level=logging.WARNING)
            dataset_meta['palette'] = palette
        super()._load_weights_to_model(
            model, _with_meta(checkpoint, dataset_meta), cfg)

    def _init_pipeline(self, cfg: Config):
        _inference_pipeline(cfg)
        return super()._init_pipeline(cfg)

    def _inputs_to_list(self, inputs) -> list:
        listed = super()._inputs_to_list(inputs)
        check_images(listed)
        return listed


class ClassificationInferencer(ImageClassificationInferencer):
    """mmpretrain's ``ImageClassificationInferencer`` for this toolkit's
    fine-tuning and linear-probe configs and their checkpoints (see the
    module docstring for what it adds).

    Upstream builds the model and loads the checkpoint non-strictly in
    ``get_model``; here the model is built in mmpretrain's scope, the
    named checkpoint is checked to fit and loaded strictly, and the class
    names come from the checkpoint or the config's test dataset, before
    upstream takes the built model.

    Args:
        model: the config (file or loaded); its model an ``ImageClassifier``.
        weights: the checkpoint; trusted for full loading.
        device: the torch device; None: ``'cuda'`` when available, else
            ``'cpu'``.
        **kwargs: other arguments of ``ImageClassificationInferencer``
            (``classes``).
    """

    def __init__(self, model: Union[str, Config], weights: str,
                 device: Optional[str] = None, **kwargs) -> None:
        from mmpretrain.registry import DATASETS, MODELS
        if not weights:
            raise ValueError('a checkpoint is needed: upstream would predict '
                             'with randomly initialised weights')
        cfg = model if isinstance(model, Config) else Config.fromfile(model)
        cfg = copy.deepcopy(cfg)
        _inference_pipeline(cfg)
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
        # the backbone's pretrained init_cfg would load (and log) weights
        # that the checkpoint replaces
        model_cfg.get('backbone', {}).pop('init_cfg', None)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            classifier = MODELS.build(model_cfg)
        checkpoint = _load_checkpoint(weights, map_location='cpu')
        check_state_matches(classifier, checkpoint, weights, cfg.filename)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            dataset_meta = _dataset_meta(checkpoint, cfg, DATASETS, weights,
                                         classifier)
        state = checkpoint_state_dict(checkpoint)
        load_state_dict(classifier, {
            k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items()
        }, strict=True)
        classifier._dataset_meta = dataset_meta
        classifier._config = cfg
        classifier._metainfo = None
        device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        super().__init__(model=classifier.to(device), pretrained=False,
                         device=device, **kwargs)

    def preprocess(self, inputs: list, batch_size: int = 1):
        check_images(inputs)
        return super().preprocess(inputs, batch_size=batch_size)


class ReconstructionInferencer:
    """Draws what a pretraining model (LoMaR, LocalMIM, MAE) reconstructs:
    one grid per image, as ``tools/analysis/visualize_reconstruction.py``.

    Args:
        config: the pretraining config (file or loaded).
        checkpoint: the checkpoint, loaded strictly; trusted for full
            loading.
        device: the torch device; None: ``'cuda'`` when available, else
            ``'cpu'``.

    Raises:
        ValueError: the config's model has no drawer.
        RuntimeError: the checkpoint does not fit the model.
    """

    def __init__(self, config: Union[str, Config], checkpoint: str,
                 device: Optional[str] = None) -> None:
        self.cfg = config if isinstance(config, Config) else \
            Config.fromfile(config)
        self.kind = self.cfg.model.get('type')
        if self.kind not in DRAWERS:
            raise ValueError(
                f'{self.cfg.filename}: model type {self.kind!r} has no '
                f'reconstruction drawing (one of {sorted(DRAWERS)})')
        self.device = device or ('cuda' if torch.cuda.is_available()
                                 else 'cpu')
        try:
            self.model = build_model(self.cfg, checkpoint, self.device)
        except RuntimeError as e:
            raise RuntimeError(f'{checkpoint} does not fit the model of '
                               f'{self.cfg.filename}: {e}') from e
        pre = self.model.data_preprocessor
        self.mean = pre.mean.flatten().to(self.device)
        self.std = pre.std.flatten().to(self.device)

    def __call__(self, inputs: Union[str, np.ndarray, list],
                 out_dir: str = '', size: Optional[int] = None,
                 seed: int = 0, zoom: int = 3) -> dict:
        """Draw the reconstruction of each image.

        Args:
            inputs: an image file or RGB array, or a list of them.
            out_dir: write each grid to ``out_dir/vis/<image name>.png``
                (arrays: ``<index>.png``); ``''`` writes nothing.
            size: the input side (default: the training crop size).
            seed: seed of the windows and masks.
            zoom: integer upscaling of the drawings.

        Returns:
            dict: ``visualization``, the RGB grids, and ``out_files``, the
            files written.
        """
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        check_images(inputs)
        size = size or _train_size(self.cfg)
        torch.manual_seed(seed)
        grids, written = [], []
        for index, item in enumerate(inputs):
            if isinstance(item, str):
                rgb = cv2.cvtColor(cv2.imread(item), cv2.COLOR_BGR2RGB)
                name = osp.splitext(osp.basename(item))[0]
            else:
                rgb, name = np.ascontiguousarray(item), str(index)
            rgb = cv2.resize(rgb, (size, size),
                             interpolation=cv2.INTER_CUBIC)
            x = torch.from_numpy(rgb).permute(2, 0, 1).float()
            x = x.to(self.device)
            x = ((x - self.mean[:, None, None]) /
                 self.std[:, None, None])[None]
            with torch.no_grad():
                rows = DRAWERS[self.kind](self.model, x, self.mean, self.std,
                                          zoom)
            grid = _grid(rows)
            grids.append(grid)
            if out_dir:
                out = osp.join(out_dir, 'vis', name + '.png')
                mmcv.imwrite(cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), out)
                written.append(out)
        return dict(visualization=grids, out_files=written)


Inferencer = Union[DetectionInferencer, SegmentationInferencer,
                   ClassificationInferencer, ReconstructionInferencer]


def init_inferencer(config: Union[str, Config],
                    checkpoint: str,
                    device: Optional[str] = None,
                    cfg_options: Optional[dict] = None,
                    **kwargs) -> Inferencer:
    """The inferencer of a config's kind, with a checkpoint loaded.

    Args:
        config: the config file (or a loaded config).
        checkpoint: the checkpoint file. The caller names it, so it is
            trusted for full (pickle) loading, as by ``tools/test.py``.
        device: the torch device; None picks one (a GPU when there is one).
        cfg_options: settings merged into the config.
        **kwargs: other arguments of the inferencer (e.g. ``palette`` of
            mmdet's, ``show_progress``).

    Returns:
        :class:`DetectionInferencer` for mmdet configs,
        :class:`SegmentationInferencer` for mmseg configs,
        :class:`ClassificationInferencer` for mmpretrain configs of an
        ``ImageClassifier``, :class:`ReconstructionInferencer` for
        mmpretrain pretraining configs.

    Raises:
        FileNotFoundError: the config or the checkpoint does not exist.
        ValueError: the config's ``default_scope`` is none of the three.
        RuntimeError: the checkpoint does not fit the config's model.
    """
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        cfg = Config.fromfile(config)
    else:
        cfg = copy.deepcopy(config)  # merging options must not change it
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    task = task_of(cfg)
    compat.trust_checkpoint(checkpoint, 'named to init_inferencer or on the '
                            'tools/demo.py command line')
    if task == 'mmdet':
        return DetectionInferencer(cfg, checkpoint, device=device, **kwargs)
    if task == 'mmseg':
        return SegmentationInferencer(cfg, checkpoint, device=device,
                                      **kwargs)
    if cfg.model.get('type') == 'ImageClassifier':
        return ClassificationInferencer(cfg, checkpoint, device=device,
                                        **kwargs)
    return ReconstructionInferencer(cfg, checkpoint, device=device, **kwargs)


def build_demo_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/demo.py``.

    Returns:
        argparse.ArgumentParser: ``CONFIG CHECKPOINT IMAGE [IMAGE ...]
        [--out-dir DIR] [--device D] [--score-thr T] [--opacity A]``.
    """
    parser = argparse.ArgumentParser(
        description='Draw the predictions of a model on images: detections '
        '(mmdet configs), segmentations (mmseg configs), the class '
        '(classification configs) or reconstructions (pretraining '
        'configs).')
    parser.add_argument('config', help='the config file')
    parser.add_argument('checkpoint', help='the checkpoint (a training '
                        'checkpoint or an extracted weights file)')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', default='outputs',
                        help='the drawings go to OUT_DIR/vis/ (default: '
                        'outputs)')
    parser.add_argument('--device', default=None,
                        help='torch device (default: cuda when available, '
                        'else cpu)')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='detection: draw boxes scoring at least this '
                        '(default 0.3)')
    parser.add_argument('--opacity', type=float, default=None,
                        help='segmentation: opacity of the drawn mask '
                        '(default 0.8)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    return parser


def demo_main(argv: Optional[List[str]] = None) -> List[str]:
    """Run ``tools/demo.py``.

    Args:
        argv: The command line without the program name; ``None`` reads
            ``sys.argv``.

    Returns:
        list: The files written: one drawing per image in
        ``OUT_DIR/vis/``, and for segmentation configs the label maps that
        mmseg's inferencer writes to ``OUT_DIR/pred/``.

    Raises:
        FileNotFoundError: the config, checkpoint or an image is missing.
        ValueError: an image cannot be read, two images share a file name,
            or an option does not apply to the config's kind.
        RuntimeError: the checkpoint does not fit the config's model.
    """
    args = build_demo_parser().parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    task = task_of(cfg)
    if args.score_thr is not None and task != 'mmdet':
        raise ValueError(f'--score-thr applies to detection configs; '
                         f'{args.config} is a {task} config')
    if args.opacity is not None and task != 'mmseg':
        raise ValueError(f'--opacity applies to segmentation configs; '
                         f'{args.config} is a {task} config')
    check_images(args.images)
    names: Dict[str, str] = {}
    for path in args.images:
        other = names.setdefault(osp.basename(path), path)
        if other != path:
            raise ValueError(f'{other} and {path} have the same file name, '
                             f'so their drawings would both be written to '
                             f'{osp.join(args.out_dir, "vis")}')
    inferencer = init_inferencer(cfg, args.checkpoint, device=args.device)
    vis_dir = osp.join(args.out_dir, 'vis')
    if task == 'mmdet':
        thr = 0.3 if args.score_thr is None else args.score_thr
        inferencer(args.images, out_dir=args.out_dir, pred_score_thr=thr)
        written = [osp.join(vis_dir, osp.basename(p)) for p in args.images]
    elif task == 'mmseg':
        first = inferencer.num_pred_imgs  # mmseg numbers its label maps
        opacity = 0.8 if args.opacity is None else args.opacity
        inferencer(args.images, out_dir=args.out_dir, opacity=opacity)
        written = [osp.join(vis_dir, osp.basename(p)) for p in args.images]
        written += [osp.join(args.out_dir, 'pred',
                             f'{first + i:08d}_pred.png')
                    for i in range(len(args.images))]
    elif isinstance(inferencer, ClassificationInferencer):
        os.makedirs(vis_dir, exist_ok=True)  # upstream makes one level only
        results = inferencer(args.images, show_dir=vis_dir)
        written = [osp.join(vis_dir,
                            osp.splitext(osp.basename(p))[0] + '.png')
                   for p in args.images]
        for path, result in zip(args.images, results):
            print(f'{path}: {result["pred_class"]} '
                  f'({result["pred_score"]:.3f})')
    else:
        written = inferencer(args.images, out_dir=args.out_dir)['out_files']
    for path in written:
        print(f'wrote {path}')
    return written
