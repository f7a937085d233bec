"""Single-image inference (:mod:`mim_pretrain.apis.inference`) and
``tools/demo.py``: mmdet's and mmseg's inferencers on this toolkit's configs
and checkpoints, class names kept through weight extraction, reconstruction
drawings of pretraining configs."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, build_model
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.registry import MODELS

from mim_pretrain import compat
from mim_pretrain.apis import (ClassificationInferencer, DetectionInferencer,
                               ReconstructionInferencer,
                               SegmentationInferencer, demo_main,
                               extract_weights, init_inferencer)

DET_CFG = ('mmdet_configs/vitdet/mask-rcnn_vit-tiny-p8-scratch_simfp_'
           '1xb4-lsj-300i_synthetic.py')
SEG_CFG = ('mmseg_configs/upernet/upernet_vit-tiny-p8-scratch_1xb4-200i_'
           'ade20k-128x128_synthetic.py')
SWIN_DET_CFG = ('mmdet_configs/localmim_swin/mask-rcnn_swin-tiny-w3_'
                'localmim-pt_fpn_1xb4-1e_synthetic.py')
SWIN_SEG_CFG = ('mmseg_configs/localmim_swin/upernet_swin-tiny-w3_'
                'localmim-pt_1xb4-200i_synthetic.py')
MAE_CFG = 'mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py'
CLS_CFG = ('mmpretrain_configs/lomar/benchmarks/lomar_vit-tiny-p8_ft-1xb32-'
           '10e_synthetic.py')
# names unlike the configs' own, so that they can only come from the
# checkpoint
CKPT_CLASSES = ('disc', 'box', 'tri', 'star5', 'donut', 'plus')
PALETTE = [(10 * i, 20 * i, 30 * i) for i in range(6)]
# an image of another size than the 128-px training inputs
WIDTH, HEIGHT = 200, 150


@pytest.fixture(autouse=True)
def _forget_trusted():
    """Each test starts and ends with no trusted checkpoint."""
    compat.clear_trusted()
    yield
    compat.clear_trusted()


def _full_checkpoint(path, model, classes=CKPT_CLASSES, palette=PALETTE):
    """Save ``model`` as a training checkpoint would: weights, meta with
    ``dataset_meta``, and a message hub (pickled HistoryBuffer objects, which
    torch's weights-only loader refuses)."""
    meta = dict(seed=0, experiment_name='inference-test')
    if classes is not None:
        meta['dataset_meta'] = dict(classes=classes, palette=palette)
    torch.save(dict(state_dict=model.state_dict(), meta=meta,
                    message_hub=dict(log_scalars=dict(
                        loss=HistoryBuffer([1.0, 0.5], [1, 1])))), path)
    return str(path)


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """Full checkpoints of freshly initialised det, seg and MAE models."""
    folder = tmp_path_factory.mktemp('ckpts')
    torch.manual_seed(0)
    out = {}
    for name, cfg in (('det', DET_CFG), ('seg', SEG_CFG)):
        model, _ = build_model(cfg)
        model.init_weights()
        out[name] = _full_checkpoint(folder / f'{name}.pth', model)
    cfg = Config.fromfile(osp.join(REPO, MAE_CFG))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        mae = MODELS.build(dict(cfg.model,
                                data_preprocessor=cfg.data_preprocessor))
    out['mae'] = _full_checkpoint(folder / 'mae.pth', mae, classes=None)
    cfg = Config.fromfile(osp.join(REPO, CLS_CFG))
    cfg.model.backbone.pop('init_cfg')  # no pretraining file here
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        cls = MODELS.build(dict(cfg.model,
                                data_preprocessor=cfg.data_preprocessor))
    cls.init_weights()
    out['cls'] = _full_checkpoint(folder / 'cls.pth', cls)
    return out


@pytest.fixture(scope='module')
def image(synthetic_data, tmp_path_factory):
    """A built-in COCO validation image resized to 200 x 150."""
    root, _ = synthetic_data
    folder = osp.join(root, 'coco', 'val2017')
    name = sorted(os.listdir(folder))[0]
    img = cv2.resize(cv2.imread(osp.join(folder, name)), (WIDTH, HEIGHT))
    path = str(tmp_path_factory.mktemp('images') / 'scene.jpg')
    cv2.imwrite(path, img)
    return path


def test_detection_inferencer(ckpts, image, tmp_path, repo_root):
    inferencer = init_inferencer(osp.join(repo_root, DET_CFG), ckpts['det'],
                                 device='cpu', show_progress=False)
    assert isinstance(inferencer, DetectionInferencer)
    # the class names are the checkpoint's, for the model and the drawing
    assert tuple(inferencer.model.dataset_meta['classes']) == CKPT_CLASSES
    assert tuple(inferencer.visualizer.dataset_meta['classes']) == \
        CKPT_CLASSES
    out = str(tmp_path / 'out')
    result = inferencer(image, out_dir=out, pred_score_thr=0.0)
    (pred, ) = result['predictions']
    n = len(pred['labels'])
    assert n > 0
    assert len(pred['scores']) == len(pred['bboxes']) == len(
        pred['masks']) == n
    assert pred['label_names'] == [CKPT_CLASSES[i] for i in pred['labels']]
    # boxes and masks are in the coordinates of the 200 x 150 input
    boxes = np.array(pred['bboxes'])
    assert boxes[:, [0, 2]].max() <= WIDTH and boxes[:, [1, 3]].max() <= \
        HEIGHT
    assert boxes[:, [0, 2]].max() > 128  # beyond the 128-px network input
    assert pred['masks'][0]['size'] == [HEIGHT, WIDTH]
    drawn = cv2.imread(osp.join(out, 'vis', 'scene.jpg'))
    assert drawn.shape == (HEIGHT, WIDTH, 3)


def test_segmentation_inferencer(ckpts, image, tmp_path, repo_root):
    inferencer = init_inferencer(osp.join(repo_root, SEG_CFG), ckpts['seg'],
                                 device='cpu')
    assert isinstance(inferencer, SegmentationInferencer)
    assert tuple(inferencer.model.dataset_meta['classes']) == CKPT_CLASSES
    out = str(tmp_path / 'out')
    result = inferencer([image], out_dir=out)
    seg = result['predictions']
    assert isinstance(seg, np.ndarray) and seg.shape == (HEIGHT, WIDTH)
    assert seg.min() >= 0 and seg.max() < len(CKPT_CLASSES)
    assert tuple(inferencer.visualizer.dataset_meta['classes']) == \
        CKPT_CLASSES
    assert [tuple(c) for c in inferencer.visualizer.dataset_meta[
        'palette']] == PALETTE
    drawn = cv2.imread(osp.join(out, 'vis', 'scene.jpg'))
    assert drawn.shape == (HEIGHT, WIDTH, 3)


@pytest.mark.parametrize('cfg', [SWIN_DET_CFG, SWIN_SEG_CFG])
def test_swin_configs(cfg, image, tmp_path, repo_root):
    """The Swin transfer configs (their backbone's init_cfg names
    pretrained weights that are not there: inference must not read them)."""
    model, _ = build_model(cfg)
    ckpt = _full_checkpoint(tmp_path / 'swin.pth', model)
    inferencer = init_inferencer(osp.join(repo_root, cfg), ckpt,
                                 device='cpu')
    result = inferencer(image, return_vis=True)
    vis = result['visualization']
    vis = vis[0] if isinstance(vis, list) else vis
    assert vis.shape == (HEIGHT, WIDTH, 3)
    assert tuple(inferencer.visualizer.dataset_meta['classes']) == \
        CKPT_CLASSES


def test_named_checkpoint_is_trusted_other_files_are_not(ckpts, repo_root):
    # the normal loader (pretrained weights, load_from) refuses the file
    with pytest.raises(RuntimeError, match='is not a plain weights file'):
        CheckpointLoader.load_checkpoint(ckpts['det'], map_location='cpu')
    assert compat.trusted_reason(ckpts['det']) is None
    # naming it to the inferencer vouches for it, as tools/test.py does
    inferencer = init_inferencer(osp.join(repo_root, DET_CFG), ckpts['det'],
                                 device='cpu')
    assert compat.trusted_reason(ckpts['det']) is not None
    assert tuple(inferencer.model.dataset_meta['classes']) == CKPT_CLASSES
    # and no other file becomes trusted
    assert compat.trusted_reason(ckpts['seg']) is None


def test_extracted_weights_keep_class_names(ckpts, image, tmp_path,
                                            repo_root):
    out = str(tmp_path / 'weights.pth')
    kept = extract_weights(ckpts['seg'], out)
    loaded = torch.load(out, map_location='cpu', weights_only=True)
    assert set(loaded['state_dict']) == set(kept)
    assert loaded['meta']['dataset_meta']['classes'] == CKPT_CLASSES
    assert loaded['meta']['dataset_meta']['palette'] == PALETTE
    assert loaded['meta']['seed'] == 0
    # the extracted file loads without trust and names the classes
    inferencer = init_inferencer(osp.join(repo_root, SEG_CFG), out,
                                 device='cpu')
    assert tuple(inferencer.model.dataset_meta['classes']) == CKPT_CLASSES
    seg = inferencer(image)['predictions']
    assert seg.shape == (HEIGHT, WIDTH)


def test_extract_weights_meta_is_plain(tmp_path):
    """numpy values become plain ones; objects a weights file cannot hold
    are left out."""
    src = str(tmp_path / 'full.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=dict(
        dataset_meta=dict(classes=('a', 'b'),
                          palette=np.array([[1, 2, 3], [4, 5, 6]]),
                          reduce_zero_label=np.bool_(True),
                          buffer=HistoryBuffer([1.0], [1])))), src)
    out = str(tmp_path / 'w.pth')
    extract_weights(src, out)
    meta = torch.load(out, weights_only=True)['meta']['dataset_meta']
    assert meta == dict(classes=('a', 'b'), palette=[[1, 2, 3], [4, 5, 6]],
                        reduce_zero_label=True)


def test_class_names_from_config_or_refused(ckpts, tmp_path, repo_root):
    model, cfg = build_model(DET_CFG)
    # no dataset_meta: the config's classes, not COCO's 80
    bare = _full_checkpoint(tmp_path / 'bare.pth', model, classes=None)
    inferencer = init_inferencer(osp.join(repo_root, DET_CFG), bare,
                                 device='cpu')
    assert tuple(inferencer.model.dataset_meta['classes']) == tuple(
        cfg.metainfo['classes'])
    # class names of another dataset
    three = _full_checkpoint(tmp_path / 'three.pth', model,
                             classes=('a', 'b', 'c'), palette=PALETTE[:3])
    with pytest.raises(ValueError, match='predicts 6 classes'):
        init_inferencer(osp.join(repo_root, DET_CFG), three, device='cpu')


def test_mismatched_checkpoint_is_named(ckpts, repo_root):
    with pytest.raises(RuntimeError) as error:
        init_inferencer(osp.join(repo_root, DET_CFG), ckpts['seg'],
                        device='cpu')
    assert f'{ckpts["seg"]} does not fit the model of' in str(error.value)
    assert 'model keys are missing' in str(error.value)
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        init_inferencer(osp.join(repo_root, DET_CFG), 'no/such.pth')


def test_demo_draws_detections(ckpts, image, tmp_path, repo_root, capsys):
    out = str(tmp_path / 'demo')
    written = demo_main([osp.join(repo_root, DET_CFG), ckpts['det'], image,
                         '--out-dir', out, '--device', 'cpu',
                         '--score-thr', '0.05'])
    assert written == [osp.join(out, 'vis', 'scene.jpg')]
    assert cv2.imread(written[0]).shape == (HEIGHT, WIDTH, 3)
    assert f'wrote {written[0]}' in capsys.readouterr().out


def test_demo_draws_reconstruction(ckpts, image, tmp_path, repo_root):
    """tools/demo.py itself, on a pretraining config."""
    out = str(tmp_path / 'demo')
    res = subprocess.run(
        [sys.executable, 'tools/demo.py', MAE_CFG, ckpts['mae'], image,
         '--out-dir', out, '--device', 'cpu'], cwd=repo_root,
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    drawn = osp.join(out, 'vis', 'scene.png')
    assert f'wrote {drawn}' in res.stdout
    # MAE: image, masked input, reconstruction of the 96-px input, zoom 3
    side = 96 * 3
    assert cv2.imread(drawn).shape == (side + 16 + 4, 3 * (side + 4), 3)
    inferencer = init_inferencer(osp.join(repo_root, MAE_CFG), ckpts['mae'],
                                 device='cpu')
    assert isinstance(inferencer, ReconstructionInferencer)
    grids = inferencer([image, image], zoom=1)['visualization']
    assert len(grids) == 2 and grids[0].shape == (96 + 16 + 4,
                                                  3 * (96 + 4), 3)


def test_demo_bad_inputs_are_named(ckpts, image, tmp_path, repo_root):
    det = osp.join(repo_root, DET_CFG)
    missing = str(tmp_path / 'none.jpg')
    with pytest.raises(FileNotFoundError, match=f'image not found: '
                       f'{missing}'):
        demo_main([det, ckpts['det'], missing])
    text = tmp_path / 'notes.jpg'
    text.write_text('not an image')
    with pytest.raises(ValueError, match=f'cannot read image {text}'):
        demo_main([det, ckpts['det'], str(text)])
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(open(image, 'rb').read()[:500])
    with pytest.raises(ValueError, match=f'cannot read image {cut}: '
                       'truncated JPEG'):
        demo_main([det, ckpts['det'], str(cut)])
    with pytest.raises(ValueError, match='--score-thr applies to detection'):
        demo_main([osp.join(repo_root, SEG_CFG), ckpts['seg'], image,
                   '--score-thr', '0.5'])
    with pytest.raises(FileNotFoundError, match='config file not found'):
        demo_main([str(tmp_path / 'no.py'), ckpts['det'], image])
    # the upstream inferencer's own inputs are checked too
    inferencer = init_inferencer(det, ckpts['det'], device='cpu')
    with pytest.raises(FileNotFoundError, match='image not found'):
        inferencer(missing)


def test_classification_inferencer(ckpts, image, tmp_path, repo_root):
    """mmpretrain's inferencer on a fine-tuning config: the checkpoint's
    class names, scores that are the model's own softmax, a drawing; a
    checkpoint whose class list does not fit the head is refused."""
    inferencer = init_inferencer(osp.join(repo_root, CLS_CFG), ckpts['cls'],
                                 device='cpu')
    assert isinstance(inferencer, ClassificationInferencer)
    assert tuple(inferencer.classes) == CKPT_CLASSES
    show = str(tmp_path / 'vis')
    (result, ) = inferencer(image, show_dir=show)
    scores = np.asarray(result['pred_scores'])
    assert scores.shape == (len(CKPT_CLASSES), )
    assert scores.sum() == pytest.approx(1.0, abs=1e-4)
    assert result['pred_class'] == CKPT_CLASSES[int(scores.argmax())]
    assert osp.isfile(osp.join(show, 'scene.png'))
    # the weights are the checkpoint's (loaded strictly, not the init_cfg)
    saved = torch.load(ckpts['cls'], weights_only=False)['state_dict']
    for key, value in inferencer.model.state_dict().items():
        assert torch.equal(value.cpu(), saved[key]), key
    # ImageNet's 1000 names for a 6-class head: refused, naming both
    wrong = _full_checkpoint(
        tmp_path / 'wrong.pth', inferencer.model,
        classes=tuple(f'c{i}' for i in range(1000)), palette=None)
    with pytest.raises(ValueError, match='are 1000 .* predicts 6 classes'):
        init_inferencer(osp.join(repo_root, CLS_CFG), wrong, device='cpu')


def test_demo_names_the_class(ckpts, image, tmp_path, repo_root, capsys):
    out = str(tmp_path / 'out')
    written = demo_main([osp.join(repo_root, CLS_CFG), ckpts['cls'], image,
                         '--out-dir', out, '--device', 'cpu'])
    assert written == [osp.join(out, 'vis', 'scene.png')]
    assert osp.isfile(written[0])
    printed = capsys.readouterr().out
    assert any(f'scene.jpg: {name} (' in printed for name in CKPT_CLASSES)
