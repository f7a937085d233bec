"""Parameters and FLOPs of any config of the project, in the zoo convention.

    python tools/analysis/get_flops.py CONFIG [--shape H [W]]
        [--cfg-options KEY=VALUE ...] [--seed 0] [--json]

The count is the one OpenMMLab's model zoos print (``tools/analysis_tools/
get_flops.py`` of mmpretrain, mmdet and mmseg): mmengine's jit-trace counter
(:class:`mmengine.analysis.FlopAnalyzer`), one multiply-add = one FLOP,
forward pass only, batch 1. What is traced depends on the kind of model the
config builds, not on its file name:

* self-supervised pretraining (``BaseSelfSupervisor``): two rows, the
  encoder on the full image without masking (``backbone(x, mask=None)``, the
  cost of using the pretrained encoder) and the pretraining forward as
  training runs it (``loss`` with the configured masking, windows, decoders
  and targets; no backward), at the train pipeline's crop size;
* classifier (``ImageClassifier``): ``extract_feat`` at the test pipeline's
  crop, as mmpretrain's tool;
* detector: ``_forward`` (backbone, neck, RPN, RoI heads on the RPN's
  proposals), as mmdet's tool, at the test pipeline's fixed pad size, else
  the mmdet zoo's customary 1280 x 800;
* segmentor: ``_forward`` (backbone, neck, decode head; the auxiliary head
  is dropped, as inference does), as mmseg's tool, at the config's crop
  size, else mmseg's default 2048 x 1024.

mmengine's counter has no handle for ``aten::scaled_dot_product_attention``
(it warns and counts 0), which every attention of the project calls; the
handles here add it (``q k^T`` and ``attn v``) and ``baddbmm``. Ops that
carry no multiply-add of their own (additions, activations, softmax, index
ops) stay uncounted, as upstream, and are listed in the output.
"""
import argparse
import copy
import json
import math
import os.path as osp
from collections import Counter
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

CONVENTION = ('1 multiply-add = 1 FLOP, forward pass, mmengine counter '
              '(mmengine.analysis.FlopAnalyzer), batch 1')

# ops that are matrix products: when one is met without a handle the count
# would be silently low, so it is an error instead
MATMUL_OPS = frozenset({
    'aten::scaled_dot_product_attention', 'aten::baddbmm', 'aten::addbmm',
    'aten::addmv', 'aten::mv', 'aten::dot', 'aten::bilinear', 'aten::conv1d',
    'aten::conv2d', 'aten::conv3d', 'aten::conv_transpose2d',
    'aten::_convolution', 'aten::linear', 'aten::matmul', 'aten::mm',
    'aten::bmm', 'aten::addmm', 'aten::einsum', 'aten::tensordot'
})

# mmseg's tool builds a (3, 2048, 1024) input; mmdet's 2.x tool a (3, 1280,
# 800) one; both are written here as (H, W) of a landscape image
SEG_DEFAULT = (1024, 2048)
DET_DEFAULT = (800, 1280)
COCO_SCALE = (1333, 800)  # mmdet's COCO test scale, counted at DET_DEFAULT
CLS_DEFAULT = (224, 224)


def _shape(value) -> Optional[List[int]]:
    from mmengine.analysis.jit_handles import get_shape
    return get_shape(value)


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::scaled_dot_product_attention``.

    ``q k^T`` is ``L S D`` multiply-adds per batch and head, ``attn v``
    ``L S Dv``; the scaling, mask and softmax are elementwise and, as for the
    explicit ``matmul`` form, not counted.
    """
    q, k, v = (_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    length, dim = q[-2:]
    return batch * length * k[-2] * (dim + v[-1])


def baddbmm_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::baddbmm(input, batch1, batch2)``: the batched
    product ``[b, n, m] x [b, m, p]`` (the addition is not counted)."""
    b1, b2 = _shape(inputs[1]), _shape(inputs[2])
    return b1[0] * b1[1] * b1[2] * b2[2]


EXTRA_HANDLES = {
    'aten::scaled_dot_product_attention': sdpa_flop_jit,
    'aten::baddbmm': baddbmm_flop_jit,
}


def human(n: float, unit: str = '') -> str:
    """``n`` with a G/M/K suffix and 3 decimals, as the zoo tables."""
    for div, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(n) >= div:
            return f'{n / div:.3f}{suffix}{unit}'
    return f'{n:.0f}{unit}'


def _tensors(out) -> Tuple[torch.Tensor, ...]:
    """The tensors of a nested output, flat: what a jit trace returns."""
    if isinstance(out, torch.Tensor):
        return (out, )
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return tuple(t for item in out for t in _tensors(item))
    if hasattr(out, 'values') and callable(out.values):  # InstanceData
        return _tensors(list(out.values()))
    return ()


class _Traced(nn.Module):
    """``fn(*inputs)`` as a module over ``owner``'s parameters, so the
    tracer scopes and the parameter count follow ``owner``."""

    def __init__(self, owner: nn.Module, fn) -> None:
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, *inputs) -> Tuple[torch.Tensor, ...]:
        return _tensors(self.fn(*inputs))


def count(module: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> dict:
    """Count one forward of ``module`` on ``inputs``.

    Returns:
        dict: ``flops`` (int), ``params`` (int) and ``uncounted`` (op name
        -> calls, for the ops the convention does not count).

    Raises:
        RuntimeError: a matrix-product op was met that no handle counts.
    """
    from mmengine.analysis import FlopAnalyzer, parameter_count
    analyzer = FlopAnalyzer(module, inputs)
    analyzer.set_op_handle(**EXTRA_HANDLES)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = analyzer.total()
    uncounted = Counter(analyzer.unsupported_ops())
    missed = sorted(op for op in uncounted if op in MATMUL_OPS)
    if missed:
        raise RuntimeError(
            f'{missed} carry multiply-adds but have no FLOP handle: the '
            'count would be low; add a handle to EXTRA_HANDLES')
    return dict(flops=int(flops), params=int(parameter_count(module)['']),
                uncounted=dict(uncounted))


def count_call(owner: nn.Module, fn, image: torch.Tensor) -> dict:
    """Count ``fn(image)`` over ``owner``'s parameters (see :func:`count`)."""
    return count(_Traced(owner, fn), (image, ))


# ------------------------------------------------------------------ config


def _pipeline(cfg, split: str) -> list:
    """The ``split`` ('train' or 'test') pipeline of ``cfg``, or []."""
    loaders = (f'{split}_dataloader', ) + (('val_dataloader', )
                                           if split == 'test' else ())
    for key in loaders:
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            ds = loader['dataset']
            while 'pipeline' not in ds and 'dataset' in ds:
                ds = ds['dataset']  # wrappers (RepeatDataset, ...)
            if ds.get('pipeline'):
                return list(ds['pipeline'])
    return list(cfg.get(f'{split}_pipeline') or [])


def _hw(size, order: str = 'wh') -> Tuple[int, int]:
    """(H, W) of an int or a pair in the transform's ``order``."""
    if isinstance(size, int):
        return size, size
    a, b = size
    return (b, a) if order == 'wh' else (a, b)


def default_shape(cfg, kind: str) -> Tuple[Tuple[int, int], str]:
    """The input (H, W) the zoo would count ``cfg`` at, and where it came
    from (printed with the result)."""
    if kind == 'pretrain':
        for t in _pipeline(cfg, 'train'):
            if 'RandomResizedCrop' in t['type'] or t['type'] == 'CenterCrop':
                size = t.get('scale', t.get('crop_size'))
                return _hw(size), f"train pipeline {t['type']}"
        img = cfg.model.get('backbone', {}).get('img_size')
        if img:
            return _hw(img), 'model.backbone.img_size'
        return CLS_DEFAULT, "mmpretrain's default 224 x 224"
    if kind == 'classifier':
        for t in _pipeline(cfg, 'test'):
            if t['type'] == 'CenterCrop':
                return _hw(t['crop_size']), 'test pipeline CenterCrop'
        for t in _pipeline(cfg, 'test'):
            if t['type'] in ('Resize', 'ResizeEdge') and 'scale' in t:
                return _hw(t['scale']), f"test pipeline {t['type']}"
        return CLS_DEFAULT, "mmpretrain's default 224 x 224"
    if kind == 'detector':
        pipeline = _pipeline(cfg, 'test')
        for t in pipeline:
            if t['type'] == 'Pad' and t.get('size'):
                return _hw(t['size']), 'test pipeline Pad size'
        for t in pipeline:
            if t['type'] == 'Resize' and t.get('scale') and tuple(
                    t['scale']) != COCO_SCALE:
                # (w, h) box of a keep-ratio resize: its largest image
                return _hw(t['scale']), 'test pipeline Resize scale'
        return DET_DEFAULT, "the mmdet zoo's 1280 x 800 (W x H)"
    crop = cfg.get('crop_size') or cfg.model.get('data_preprocessor',
                                                 {}).get('size')
    if crop:
        return _hw(crop, 'hw'), 'crop_size'
    return SEG_DEFAULT, "mmseg's default 2048 x 1024 (W x H)"


def model_kind(model: nn.Module) -> str:
    """'pretrain', 'classifier', 'detector' or 'segmentor'."""
    from mmdet.models.detectors import BaseDetector
    from mmpretrain.models import BaseClassifier, BaseSelfSupervisor
    from mmseg.models.segmentors import BaseSegmentor
    for base, kind in ((BaseSelfSupervisor, 'pretrain'),
                       (BaseClassifier, 'classifier'),
                       (BaseDetector, 'detector'),
                       (BaseSegmentor, 'segmentor')):
        if isinstance(model, base):
            return kind
    raise TypeError(f'{type(model).__name__} is none of a self-supervisor, '
                    'classifier, detector or segmentor: no counting rule')


def load_config(path: str, cfg_options: Optional[dict] = None):
    """The config at ``path`` with ``cfg_options`` merged; a clear error
    when the file does not exist."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'{path} has no `model`')
    return cfg


def build(cfg) -> Tuple[nn.Module, str]:
    """The model of ``cfg`` built in its default scope (no weights loaded:
    the count does not depend on them), and the scope."""
    from mmengine.registry import DefaultScope

    import mim_pretrain  # noqa: F401  registers the project's modules
    scope = cfg.get('default_scope') or 'mmpretrain'
    # a ConfigDict: mmdet's detectors read their train/test cfg by attribute
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(model_cfg)
    return model, scope


# ----------------------------------------------------------------- counting


def _image(shape: Tuple[int, int]) -> torch.Tensor:
    return torch.randint(0, 256, (3, *shape), dtype=torch.uint8)


def _pretrain_rows(model, shape) -> List[dict]:
    from mmpretrain.structures import DataSample

    # the self-supervised preprocessor takes a stacked batch (a list would
    # be read as views)
    data = model.data_preprocessor(
        dict(inputs=_image(shape)[None], data_samples=[DataSample()]), True)
    inputs, samples = data['inputs'], data['data_samples']
    bb = model.backbone
    model.eval()
    encoder = count_call(bb, lambda x: bb(x, mask=None), inputs)
    encoder['what'] = 'encoder (full image, no masking)'
    model.train()  # the loss path as training runs it (dropout draws)
    pretrain = count_call(model, lambda x: model.loss(x, samples),
                          inputs)
    pretrain['what'] = 'pretraining forward (loss, as trained)'
    details = []
    if hasattr(bb, 'num_windows'):
        details.append(f'{bb.num_windows} windows of {bb.window_size}x'
                       f'{bb.window_size} patches')
    if hasattr(bb, 'mask_ratio'):
        details.append(f'mask ratio {bb.mask_ratio}')
    if details:
        pretrain['note'] = 'per image: ' + ', '.join(details)
    model.eval()
    return [encoder, pretrain]


def _classifier_rows(model, shape) -> List[dict]:
    from mmpretrain.structures import DataSample
    data = model.data_preprocessor(
        dict(inputs=[_image(shape)], data_samples=[DataSample()]), False)
    model.eval()
    # mmpretrain's tool: extract_feat's FLOPs, the whole model's params
    row = count_call(model, model.extract_feat, data['inputs'])
    row['what'] = 'backbone + neck (extract_feat)'
    return [row]


def _detector_rows(model, shape) -> List[dict]:
    from mmdet.structures import DetDataSample
    meta = dict(img_shape=shape, ori_shape=shape, scale_factor=(1., 1.))
    data = model.data_preprocessor(
        dict(inputs=[_image(shape)],
             data_samples=[DetDataSample(metainfo=meta)]), False)
    samples = data['data_samples']
    model.eval()
    row = count_call(model, lambda x: model._forward(x, samples),
                     data['inputs'])
    row['what'] = ('_forward: backbone, neck, RPN, RoI heads on the RPN '
                   'proposals')
    row['input_shape'] = tuple(data['inputs'].shape[1:])
    return [row]


def _segmentor_rows(model, shape) -> List[dict]:
    from mmseg.structures import SegDataSample
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None  # training only, as mmseg's tool
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape)
    data = model.data_preprocessor(
        dict(inputs=[_image(shape)],
             data_samples=[SegDataSample(metainfo=meta)]), False)
    samples = data['data_samples']
    model.eval()
    row = count_call(model, lambda x: model._forward(x, samples),
                     data['inputs'])
    row['what'] = '_forward: backbone, neck, decode head (no auxiliary head)'
    row['input_shape'] = tuple(data['inputs'].shape[1:])
    return [row]


ROWS = dict(pretrain=_pretrain_rows, classifier=_classifier_rows,
            detector=_detector_rows, segmentor=_segmentor_rows)


def analyze(config: str,
            shape: Optional[Sequence[int]] = None,
            cfg_options: Optional[dict] = None,
            seed: int = 0) -> dict:
    """Count the parameters and FLOPs of the model of ``config``.

    Args:
        config: config file.
        shape: input (H, W), or (S, ) for a square; None for the config's
            own (see :func:`default_shape`).
        cfg_options: keys merged into the config first.
        seed: seed of the random image and of the masks drawn.

    Returns:
        dict: ``config``, ``model`` (type), ``kind``, ``scope``,
        ``shape_source``, ``convention`` and ``rows``, each with ``what``,
        ``input_shape`` (C, H, W), ``flops``, ``params`` and ``uncounted``.
    """
    cfg = load_config(config, cfg_options)
    model, scope = build(cfg)
    kind = model_kind(model)
    if shape:
        if len(shape) not in (1, 2):
            raise ValueError(f'shape takes H [W], got {list(shape)}')
        hw = (shape[0], shape[-1])
        source = '--shape'
    else:
        hw, source = default_shape(cfg, kind)
    torch.manual_seed(seed)
    rows = ROWS[kind](model, tuple(int(s) for s in hw))
    for row in rows:
        row.setdefault('input_shape', (3, *hw))
    return dict(config=config, model=type(model).__name__, kind=kind,
                scope=scope, shape_source=source, convention=CONVENTION,
                rows=rows)


def format_result(result: dict) -> str:
    """The result as upstream's summary: input shape, Flops, Params, with
    the convention stated."""
    line = '=' * 78
    out = [line, f"Config: {result['config']}",
           f"Model: {result['model']} ({result['scope']} {result['kind']})",
           f"Input shape from: {result['shape_source']}",
           f"Convention: {result['convention']}", line]
    header = ('what', 'input shape', 'Flops', 'Params')
    table = [header] + [(r['what'], str(tuple(r['input_shape'])),
                         human(r['flops']), human(r['params']))
                        for r in result['rows']]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for i, row in enumerate(table):
        out.append('  '.join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            out.append('  '.join('-' * w for w in widths))
    rows = result['rows']
    for r in rows:
        if r.get('note'):
            out.append(f"{r['what']}: {r['note']}")
    if result['kind'] == 'pretrain' and len(rows) == 2 and rows[0]['flops']:
        out.append(f"pretraining forward / encoder at full input: "
                   f"{rows[1]['flops'] / rows[0]['flops']:.3f}")
    uncounted = Counter()
    for r in rows:
        uncounted.update(r['uncounted'])
    if uncounted:
        names = ', '.join(op.replace('aten::', '')
                          for op, _ in uncounted.most_common())
        out.append('Not counted (no multiply-adds, as upstream): ' + names)
    out.append(line)
    return '\n'.join(out)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of a config, in the OpenMMLab '
        'zoo convention (' + CONVENTION + ')')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        metavar='H [W]',
                        help='input height and width (one value: square); '
                        "default: the config's train crop (pretraining), "
                        'test crop (classification), test pad size else '
                        '1280x800 (detection), crop size else 2048x1024 '
                        '(segmentation)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random image and masks')
    parser.add_argument('--json', action='store_true',
                        help='print the result as JSON instead')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error('--shape takes H [W]')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point of ``tools/analysis/get_flops.py``."""
    from mmengine.logging import MMLogger
    args = parse_args(argv)
    # building logs every initialised parameter otherwise
    MMLogger.get_instance('mim_pretrain_flops', log_level='WARNING')
    result = analyze(args.config, args.shape, args.cfg_options, args.seed)
    if args.json:
        print(json.dumps(result, indent=2, default=list))
    else:
        print(format_result(result))
    return result
