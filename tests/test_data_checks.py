"""The data checks at job scale: one switch in the config
(``data_checks``), one check per job (rank 0 reads, every rank gets its
outcome), the box checks against a plain loop, and the benchmark command
at a tiny size."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from mim_pretrain.benchmarks import data_checks as bench
from mim_pretrain.datasets import checks
from mim_pretrain.datasets.checks import DataCheckError, check_config_inputs

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ANN = 'instances_train2017.json'


@pytest.fixture
def coco_file(tmp_path):
    """A small COCO instances file (the benchmark's generator)."""
    path = str(tmp_path / 'coco' / ANN)
    bench.write_coco_annotations(path, num_images=20, num_annotations=150)
    return path


def _truncate(path):
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:len(text) // 2])


def _cfg_dict(path, **data_checks):
    cfg = dict(
        default_scope='mmdet',
        train_dataloader=dict(dataset=dict(
            type='CocoDataset', data_root=osp.dirname(path),
            ann_file=osp.basename(path), data_prefix=dict(img=''))))
    if data_checks:
        cfg['data_checks'] = data_checks
    return cfg


def _fresh_logger(name):
    """A new current MMLogger, so its console handler writes to the stdout
    that capsys captures in this test."""
    from mmengine.logging import MMLogger
    return MMLogger.get_instance(name)


def _train_config(path, tmp_path):
    """``setup_train_config`` of a config file reading ``path``, as
    tools/train.py would (options go through --cfg-options)."""
    cfg_path = str(tmp_path / 'cfg.py')
    with open(cfg_path, 'w') as f:
        f.write(''.join(f'{k} = {v!r}\n'
                        for k, v in _cfg_dict(path).items()))

    def setup(*options):
        from mim_pretrain.apis.run import (build_train_parser,
                                           setup_train_config)
        argv = [cfg_path, '--work-dir', str(tmp_path / 'work')]
        if options:
            argv += ['--cfg-options', *options]
        return setup_train_config(build_train_parser().parse_args(argv))

    return setup


def test_off_switch_from_the_command_line(coco_file, tmp_path, capsys):
    """A truncated file stops the run while the checks are on (the default)
    and passes with ``--cfg-options data_checks.enabled=False``, which the
    log states once."""
    _truncate(coco_file)
    setup = _train_config(coco_file, tmp_path)
    with pytest.raises(DataCheckError, match=f'{ANN} is not valid JSON'):
        setup()
    with pytest.raises(DataCheckError, match=f'{ANN} is not valid JSON'):
        setup('data_checks.enabled=True')
    _fresh_logger('test_data_checks_off')
    cfg = setup('data_checks.enabled=False')
    assert cfg.data_checks.enabled is False
    out = capsys.readouterr().out
    assert out.count('data checks are off (data_checks.enabled=False)') == 1


def test_off_switch_in_the_config(coco_file):
    _truncate(coco_file)
    with pytest.raises(DataCheckError, match='not valid JSON'):
        check_config_inputs(Config(_cfg_dict(coco_file, enabled=True)))
    check_config_inputs(Config(_cfg_dict(coco_file, enabled=False)))
    # the box policy still has its own key beside the switch
    check_config_inputs(
        Config(_cfg_dict(coco_file, enabled=False, invalid_boxes='skip')))


@pytest.mark.parametrize('value, message', [
    (dict(enabled='no'), "data_checks.enabled must be True or False, got "
     "'no'"),
    (dict(enabled=0), 'data_checks.enabled must be True or False, got 0'),
    (dict(invalid_boxes='drop'), "data_checks.invalid_boxes must be one of "
     r"\('error', 'skip'\), got 'drop'"),
    (dict(enable=False), r"data_checks: unknown key\(s\) \['enable'\]; the "
     r"known ones are \['enabled', 'invalid_boxes'\]"),
    (False, r'data_checks must be a dict such as dict\(enabled=False\)'),
])
def test_wrong_settings_name_the_key(coco_file, value, message):
    """Checked even when the checks are off, and before any file is read."""
    cfg = Config(_cfg_dict(coco_file))
    cfg.data_checks = value
    with pytest.raises(DataCheckError, match=message):
        check_config_inputs(cfg)


def test_wrong_value_from_the_command_line(coco_file, tmp_path):
    setup = _train_config(coco_file, tmp_path)
    with pytest.raises(DataCheckError, match='data_checks.enabled must be '
                       "True or False, got 'off'"):
        setup('data_checks.enabled=off')


def test_box_checks_agree_with_mmdet(tmp_path):
    """Random boxes around the image edges (integers, floats, zero and
    negative sizes, ignored and zero-area ones): the boxes the checks report
    are exactly those mmdet's own CocoDataset drops."""
    from mmdet.datasets import CocoDataset
    rng = np.random.default_rng(0)
    sizes = zip(rng.permutation(1000)[:50], rng.integers(1, 60, 50),
                rng.integers(1, 60, 50))
    images = [dict(id=int(i), width=int(w), height=int(h),
                   file_name=f'{i}.jpg') for i, w, h in sizes]
    anns = []
    for k in range(3000):
        img = images[rng.integers(len(images))]
        box = rng.normal(0, 30, 4).round(int(rng.integers(0, 3)))
        box[2:] = np.where(rng.random(2) < 0.3, rng.choice([0, 0.5, 1], 2),
                           box[2:])
        box = [int(v) if v == int(v) and k % 2 else float(v) for v in box]
        ann = dict(id=k * 7 + 3, image_id=img['id'], bbox=box,
                   category_id=1, iscrowd=int(k % 5 == 0),
                   area=float(rng.choice([0, 10, -1, 5.5])))
        if k % 11 == 0:
            ann['ignore'] = bool(k % 2)
        anns.append(ann)
    coco = dict(images=images, annotations=anns,
                categories=[dict(id=1, name='thing')])
    bad = checks.invalid_coco_boxes(coco, 'x.json')
    assert bad['no area'] and bad['outside the image']
    dropped = set(bad['no area']) | set(bad['outside the image'])
    path = str(tmp_path / 'boxes.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    dataset = CocoDataset(ann_file=path, data_prefix=dict(img=''),
                          metainfo=dict(classes=('thing', )), pipeline=[],
                          lazy_init=True)
    dataset.full_init()
    kept = {dataset.get_data_info(i)['img_id']:
            len(dataset.get_data_info(i)['instances'])
            for i in range(len(dataset))}
    expected = {img['id']: 0 for img in images}
    for ann in anns:
        if not ann.get('ignore') and ann['id'] not in dropped:
            expected[ann['image_id']] += 1
    assert kept == expected


@pytest.mark.parametrize('edit, message', [
    (lambda c: c['annotations'][3].update(image_id=-5),
     r"annotation id 4 refers to image_id -5, which is not in \"images\""),
    (lambda c: c['annotations'][5].update(bbox=[1, 2, 3]),
     r'annotation id 6 has bbox \[1, 2, 3\]; expected \[x, y, w, h\]'),
    (lambda c: c['annotations'][7].update(bbox=[1, 2, 'a', 4]),
     r"annotation id 8 has bbox \[1, 2, 'a', 4\]; expected \[x, y, w, h\]"),
    (lambda c: c['annotations'][9].update(area='12'),
     r"annotation id 10 has area '12'; expected a number"),
    (lambda c: c['images'][2].pop('width'),
     'lacks id/width/height'),
    (lambda c: c.update(annotations={}),
     "need a list under 'annotations'; found dict"),
])
def test_malformed_entries_are_named(coco_file, edit, message):
    with open(coco_file) as f:
        coco = json.load(f)
    edit(coco)
    with pytest.raises(DataCheckError, match=message):
        checks.invalid_coco_boxes(coco, coco_file)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank_worker(rank, port, cases, out_dir):
    """One rank of a 2-process gloo group: rank 1 may not read any data;
    for each (name, config, file damage) case the ranks check the config
    and write what check_config_inputs did."""
    import torch.distributed as dist

    from mim_pretrain.datasets import checks as rank_checks
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    if rank != 0:

        def forbidden(*args, **kwargs):
            raise AssertionError(f'rank {rank} read the data')

        rank_checks._check_dataset = forbidden
        rank_checks.load_json = forbidden
    results = {}
    for name, cfg_dict, damage in cases:
        if damage and rank == 0:
            _truncate(damage)
        dist.barrier()  # the file is as the case needs it on every rank
        try:
            rank_checks.check_config_inputs(Config(cfg_dict))
            results[name] = None
        except Exception as exc:
            results[name] = [type(exc).__name__, str(exc)]
    with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(results, f)
    dist.barrier()
    dist.destroy_process_group()


def test_only_rank_0_reads_and_every_rank_gets_its_error(coco_file,
                                                         tmp_path):
    """Two gloo processes; rank 1 fails if it reads anything. A good file
    passes on both; a truncated one raises the same DataCheckError, naming
    the file, on both; switched off, neither reads it."""
    import torch.multiprocessing as mp
    cases = [('good', _cfg_dict(coco_file), None),
             ('bad', _cfg_dict(coco_file), coco_file),
             ('off', _cfg_dict(coco_file, enabled=False), None)]
    out = str(tmp_path)
    # fork: the children share the imports already made (CPU only, gloo)
    mp.start_processes(_rank_worker, args=(_free_port(), cases, out),
                       nprocs=2, start_method='fork')
    ranks = []
    for rank in range(2):
        with open(osp.join(out, f'rank{rank}.json')) as f:
            ranks.append(json.load(f))
    assert ranks[0] == ranks[1], ranks
    assert ranks[0]['good'] is None and ranks[0]['off'] is None
    kind, message = ranks[0]['bad']
    assert kind == 'DataCheckError'
    assert f'{coco_file} is not valid JSON' in message


@pytest.mark.slow
def test_dist_train_fails_on_every_rank_with_the_file(tmp_path):
    """tools/dist_train.sh, 2 CPU processes: a truncated annotation file
    stops both ranks before the Runner is built, each with the checks'
    error naming the file; only rank 0 read it."""
    root = tmp_path / 'coco'
    path = str(root / 'annotations' / ANN)
    bench.write_coco_annotations(path, num_images=8, num_annotations=40)
    _truncate(path)
    config = osp.join(REPO, 'mmdet_configs', 'stack_check',
                      'mask-rcnn_r18_fpn_2e_synthetic.py')
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    res = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir',
         str(tmp_path / 'work'), '--cfg-options',
         f'train_dataloader.dataset.data_root={root}/'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log = res.stdout + res.stderr
    assert res.returncode != 0, log[-3000:]
    message = f'{path} is not valid JSON'
    # rank 0 logs it before any rank may exit; rank 1 raises it unread
    assert any('the data checks failed: DataCheckError: ' in line
               and message in line for line in log.splitlines()), log[-4000:]
    assert any(line.startswith('[rank1]:') and 'DataCheckError' in line
               and message in line for line in log.splitlines()), log[-4000:]
    assert not any(line.startswith('[rank1]:') and 'load_json' in line
                   for line in log.splitlines())
    # stopped before the Runner: it makes the work dir's run folder
    work = tmp_path / 'work'
    assert not work.exists() or not os.listdir(work), os.listdir(work)


def test_benchmark_command_at_a_tiny_size(tmp_path):
    """tools/benchmarks/data_checks.py end to end at 100 images: the file
    is COCO-shaped (pycocotools reads it, the checks pass) and the same for
    the same seed; every reader is timed and measured."""
    work = str(tmp_path / 'work')
    res = subprocess.run(
        [sys.executable, 'tools/benchmarks/data_checks.py', '--images', '100',
         '--out', str(tmp_path / 'data'), '--work-dir', work],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-3000:]
    with open(osp.join(work, 'data_checks.json')) as f:
        saved = json.load(f)
    assert saved['file']['images'] == 100
    assert saved['file']['annotations'] == round(100 * 860001 / 118287)
    rows = {r['kind']: r for r in saved['measures']}
    assert set(rows) == {'json.load', 'checks', 'pycocotools'}
    for row in rows.values():
        assert row['wall_s'] > 0 and row['cpu_s'] > 0
        assert row['peak_mib'] >= 0 and row['kept_mib'] is not None
    assert rows['checks']['parse_s'] > 0 and rows['checks']['boxes_s'] > 0
    assert '| checks |' in open(osp.join(work, 'data_checks.md')).read()
    path = str(tmp_path / 'data' / ANN)
    with open(path) as f:
        coco = json.load(f)
    assert len(coco['images']) == 100
    assert len({a['id'] for a in coco['annotations']}) == 727
    crowd = [a for a in coco['annotations'] if a['iscrowd']]
    assert all(set(a['segmentation']) == {'counts', 'size'} for a in crowd)
    polys = [a['segmentation'] for a in coco['annotations']
             if not a['iscrowd']]
    assert all(len(p) >= 8 and len(p) % 2 == 0 for s in polys for p in s)
    again = str(tmp_path / 'again.json')
    bench.write_coco_annotations(again, 100, 727)
    assert open(again).read() == open(path).read()
