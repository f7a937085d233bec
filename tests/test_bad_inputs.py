"""Bad input gets a clear error that names the culprit; nothing is silently
skipped unless the config asks for it, and then it is counted in the log.
Also: a non-finite loss stops the run (or skips the step when asked)."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mim_pretrain.datasets.checks import DataCheckError, check_config_inputs

DET_CFG = 'mmdet_configs/stack_check/mask-rcnn_r18_fpn_2e_synthetic.py'
SEG_CFG = 'mmseg_configs/stack_check/upernet_r18_200i_synthetic.py'


@pytest.fixture
def coco(synthetic_data, tmp_path):
    """A private copy of the built-in COCO data, free to damage."""
    root, _ = synthetic_data
    dst = str(tmp_path / 'coco')
    shutil.copytree(osp.join(root, 'coco'), dst)
    return dst


def _det_cfg(repo_root, coco_root):
    cfg = Config.fromfile(osp.join(repo_root, DET_CFG))
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = coco_root + '/'
    ann = f'{coco_root}/annotations/instances_val2017.json'
    cfg.val_evaluator.ann_file = cfg.test_evaluator.ann_file = ann
    return cfg


def test_valid_data_passes(coco, repo_root):
    check_config_inputs(_det_cfg(repo_root, coco))


def test_missing_data_root(coco, repo_root):
    cfg = _det_cfg(repo_root, coco)
    cfg.train_dataloader.dataset.data_root = '/nonexistent/coco/'
    with pytest.raises(DataCheckError, match="data_root does not exist: "
                       "'/nonexistent/coco/'"):
        check_config_inputs(cfg)


def test_missing_annotation_file(coco, repo_root):
    os.remove(osp.join(coco, 'annotations', 'instances_train2017.json'))
    with pytest.raises(DataCheckError,
                       match='ann_file not found: .*instances_train2017'):
        check_config_inputs(_det_cfg(repo_root, coco))


def test_malformed_annotation_json(coco, repo_root):
    path = osp.join(coco, 'annotations', 'instances_train2017.json')
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:len(text) // 2])
    with pytest.raises(DataCheckError,
                       match=r'instances_train2017.json is not valid JSON: '
                       r'.* at line \d+ column \d+'):
        check_config_inputs(_det_cfg(repo_root, coco))


def test_annotation_json_without_images(coco, repo_root):
    path = osp.join(coco, 'annotations', 'instances_train2017.json')
    with open(path) as f:
        data = json.load(f)
    del data['images']
    with open(path, 'w') as f:
        json.dump(data, f)
    with pytest.raises(DataCheckError, match="need a list under 'images'"):
        check_config_inputs(_det_cfg(repo_root, coco))


def _break_boxes(coco_root):
    path = osp.join(coco_root, 'annotations', 'instances_train2017.json')
    with open(path) as f:
        data = json.load(f)
    anns = data['annotations']
    anns[0]['bbox'] = [10, 10, 0.5, 5]  # under a pixel wide
    width = {i['id']: i['width'] for i in data['images']}[anns[1]['image_id']]
    anns[1]['bbox'] = [width + 5, 0, 10, 10]  # right of the image
    with open(path, 'w') as f:
        json.dump(data, f)
    return anns[0]['id'], anns[1]['id']


def test_invalid_boxes_are_an_error_by_default(coco, repo_root):
    flat, outside = _break_boxes(coco)
    with pytest.raises(DataCheckError) as err:
        check_config_inputs(_det_cfg(repo_root, coco))
    msg = str(err.value)
    assert 'instances_train2017.json has 2 boxes' in msg
    assert f'1 no area (ids [{flat}])' in msg
    assert f'1 outside the image (ids [{outside}])' in msg
    assert "invalid_boxes='skip'" in msg


def test_invalid_boxes_skipped_on_request_are_counted(coco, repo_root,
                                                      capsys):
    _break_boxes(coco)
    cfg = _det_cfg(repo_root, coco)
    cfg.data_checks = dict(invalid_boxes='skip')
    _fresh_logger('test_skip_boxes')
    check_config_inputs(cfg)
    out = capsys.readouterr().out
    assert 'skipping 2 of' in out and '1 no area' in out


def test_unknown_data_checks_key(coco, repo_root):
    cfg = _det_cfg(repo_root, coco)
    cfg.data_checks = dict(invalid_box='skip')
    with pytest.raises(DataCheckError, match="unknown key.*'invalid_box'"):
        check_config_inputs(cfg)


def _fresh_logger(name):
    """A new current MMLogger, so its console handler writes to the stdout
    that capsys captures in this test."""
    from mmengine.logging import MMLogger
    return MMLogger.get_instance(name)


def _load(path, **kwargs):
    from mim_pretrain.datasets.transforms import CheckedLoadImageFromFile
    return CheckedLoadImageFromFile(**kwargs)(
        dict(img_path=path, img_prefix=None))


def test_truncated_and_corrupt_images_name_the_file(coco, tmp_path):
    name = sorted(os.listdir(osp.join(coco, 'train2017')))[0]
    good = osp.join(coco, 'train2017', name)
    assert _load(good)['img'].ndim == 3
    with open(good, 'rb') as f:
        data = f.read()
    truncated = str(tmp_path / 'truncated.jpg')
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) * 2 // 3])
    with pytest.raises(ValueError, match='truncated.jpg: truncated JPEG'):
        _load(truncated)
    garbage = str(tmp_path / 'garbage.jpg')
    with open(garbage, 'wb') as f:
        f.write(b'not an image at all' * 10)
    with pytest.raises(ValueError, match='garbage.jpg: the bytes could not'):
        _load(garbage)
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        _load(str(tmp_path / 'missing.jpg'))


def test_ignore_empty_skips_are_logged_with_a_count(tmp_path, capsys):
    _fresh_logger('test_ignore_empty')
    bad = str(tmp_path / 'bad.jpg')
    with open(bad, 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0 truncated')
    assert _load(bad, ignore_empty=True) is None
    out = capsys.readouterr().out
    assert 'skipped unreadable image' in out and 'bad.jpg' in out
    assert 'skipped so far' in out


def test_segmentation_labels_beyond_the_classes(synthetic_data, tmp_path,
                                                repo_root):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    from PIL import Image
    root, _ = synthetic_data
    ade = str(tmp_path / 'ade')
    shutil.copytree(osp.join(root, 'ade'), ade)
    ade = osp.join(ade, 'ADEChallengeData2016')
    cfg = Config.fromfile(osp.join(repo_root, SEG_CFG))
    init_default_scope('mmseg')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = ade
    dataset = DATASETS.build(ds_cfg)
    dataset[0]  # valid labels pass
    label_path = dataset.get_data_info(0)['seg_map_path']
    label = np.array(Image.open(label_path))
    label[:4, :4] = 200  # after reduce_zero_label: 199, not a class
    Image.fromarray(label).save(label_path)
    with pytest.raises(ValueError) as err:
        for _ in range(20):  # random crops may miss the corner: retry
            dataset[0]
    assert osp.basename(label_path) in str(err.value)
    assert '[199]' in str(err.value)
    assert f'{len(dataset.metainfo["classes"])} classes' in str(err.value)


def test_missing_corrupt_and_mismatched_checkpoints(tmp_path):
    from mim_pretrain.apis.run import check_checkpoint_matches
    from mim_pretrain.compat import load_local_checkpoint
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        load_local_checkpoint(str(tmp_path / 'nothing.pth'))
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': model.state_dict()}, good)
    check_checkpoint_matches(model, good)
    with open(good, 'rb') as f:
        data = f.read()
    broken = str(tmp_path / 'broken.pth')
    with open(broken, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(RuntimeError, match='broken.pth cannot be read: it '
                       'is truncated'):
        load_local_checkpoint(broken)
    other = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2),
                                torch.nn.ReLU(), torch.nn.Linear(2, 2))
    with pytest.raises(RuntimeError) as err:
        check_checkpoint_matches(other, good)
    msg = str(err.value)
    assert "2 of 6 model keys are missing from the checkpoint: ['3.weight'"\
        in msg
    assert '0.weight: checkpoint (3, 4) vs model (5, 4)' in msg


def test_misspelled_module_argument():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import mim_pretrain  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            pytest.raises(TypeError, match=r"LoMaRViT got an unknown "
                          r"argument 'mask_ratoi'; did you mean "
                          r"'mask_ratio'\?.* window_size"):
        MODELS.build(dict(type='LoMaRViT', arch='s', mask_ratoi=0.8))


def test_input_size_and_window_settings():
    from mim_pretrain.models import LocalMIMViT, LoMaRViT, PatchEmbed
    with pytest.raises(ValueError, match='input size 100x96 is not divisible '
                       'by the patch size 16'):
        PatchEmbed(16, 3, 8)(torch.zeros(1, 3, 100, 96))
    lomar = LoMaRViT(arch=dict(embed_dims=32, depth=1, num_heads=2),
                     patch_size=8, window_size=7)
    with pytest.raises(ValueError, match='window'):
        lomar(torch.zeros(1, 3, 48, 48))  # 6x6 grid < 7x7 window
    with pytest.raises(ValueError, match='mask_ratio 1.0'):
        LocalMIMViT(arch=dict(embed_dims=32, depth=8, num_heads=2),
                    patch_size=8, mask_ratio=1.0)(torch.zeros(1, 3, 32, 32))


def test_empty_dataset_is_an_error():
    from torch.utils.data import DataLoader

    from mim_pretrain.engine.loops import check_not_empty
    with pytest.raises(ValueError, match='training data gives no batch '
                       r'\(list: 0 samples'):
        check_not_empty(DataLoader([], batch_size=2))
    with pytest.raises(ValueError, match='3 samples, batch size 4, '
                       'drop_last=True'):
        check_not_empty(DataLoader([1, 2, 3], batch_size=4, drop_last=True))


class _Toy(torch.nn.Module):
    pass


def _toy_runner(tmp_path, action, bad_steps,
                optimizer=dict(type='SGD', lr=0.01)):
    """A real mmengine Runner on a toy model whose loss is NaN at the given
    (1-based) steps."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 1)
            self.calls = 0

        def forward(self, inputs, data_samples=None, mode='loss'):
            self.calls += 1
            loss = self.fc(torch.stack(inputs)).pow(2).mean()
            if self.calls in bad_steps:
                loss = loss * float('nan')
            return dict(loss=loss)

    data = [torch.ones(2) * i for i in range(8)]
    return Runner(
        model=Toy(), work_dir=str(tmp_path / action),
        train_dataloader=DataLoader(data, batch_size=2,
                                    collate_fn=lambda b: dict(inputs=b)),
        optim_wrapper=dict(optimizer=optimizer),
        train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epochs=2),
        custom_hooks=[dict(type='FiniteLossHook', action=action)],
        default_hooks=dict(checkpoint=None), randomness=dict(seed=0))


@pytest.fixture(autouse=True)
def keep_default_scope():
    """Runners and dataset builds here set mmengine's default scope; give
    the next test the scope it had."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


def test_nonfinite_loss_stops_with_the_iteration(tmp_path):
    runner = _toy_runner(tmp_path, 'stop', bad_steps={3})
    before = {}

    def remember(module, args):
        before.update({k: v.clone() for k, v in module.state_dict().items()})

    with pytest.raises(FloatingPointError,
                       match=r'loss is nan at iteration 3 \(epoch 1\).*'
                       'learning rate'):
        runner.model.register_forward_pre_hook(remember)
        runner.train()
    for k, v in runner.model.state_dict().items():  # the update was not made
        torch.testing.assert_close(v, before[k])


def test_nonfinite_loss_skipped_on_request_is_counted(tmp_path):
    runner = _toy_runner(tmp_path, 'skip', bad_steps={3, 6})
    runner.train()
    assert runner.iter == 8
    assert runner.message_hub.get_info('skipped_nonfinite_steps') == 2
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_amp_flag_uses_a_dynamic_loss_scale(repo_root):
    from mim_pretrain.apis.run import build_train_parser, setup_train_config
    args = build_train_parser().parse_args([
        osp.join(repo_root, 'mmpretrain_configs', 'lomar',
                 'lomar_vit-tiny-p8_1xb32-20e_synthetic.py'), '--amp',
        '--cfg-options', 'train_dataloader.dataset.data_root=/'])
    cfg = setup_train_config(args)
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'auto'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
