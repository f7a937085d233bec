"""The stack fixes of compat.py: checkpoint loading (full pickle only for
trusted files), and how every fix is applied, logged and documented."""
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

from mim_pretrain import compat


@pytest.fixture(autouse=True)
def _clean_trust():
    compat.clear_trusted()
    yield
    compat.clear_trusted()


@pytest.fixture
def full_ckpt(tmp_path):
    """A checkpoint shaped like mmengine's: weights plus a message hub."""
    path = tmp_path / 'run' / 'epoch_1.pth'
    path.parent.mkdir()
    buf = HistoryBuffer()
    buf.update(1.0)
    torch.save({'state_dict': {'w': torch.ones(2)},
                'message_hub': {'log_scalars': {'loss': buf}}}, path)
    return path


def test_plain_weights_load_without_trust(tmp_path):
    path = tmp_path / 'w.pth'
    torch.save({'state_dict': {'w': torch.arange(3.)}}, path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.))


def test_untrusted_full_checkpoint_is_refused_with_a_clear_error(full_ckpt):
    with pytest.raises(RuntimeError) as info:
        _load_checkpoint(str(full_ckpt), map_location='cpu')
    msg = str(info.value)
    assert str(full_ckpt) in msg and 'extract_weights.py' in msg


def test_trusted_file_and_directory_load_in_full(full_ckpt, tmp_path):
    compat.trust_checkpoint(str(full_ckpt), 'test')
    ckpt = _load_checkpoint(str(full_ckpt), map_location='cpu')
    assert isinstance(ckpt['message_hub']['log_scalars']['loss'],
                      HistoryBuffer)
    compat.clear_trusted()
    compat.trust_directory(str(full_ckpt.parent), 'work dir')
    assert compat.trusted_reason(str(full_ckpt)) == 'work dir'
    assert _load_checkpoint(str(full_ckpt), map_location='cpu')
    # a sibling folder whose name merely starts the same is not trusted
    other = tmp_path / 'run2' / 'x.pth'
    other.parent.mkdir()
    torch.save({}, other)
    assert compat.trusted_reason(str(other)) is None


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


def test_extract_weights_tool(full_ckpt, tmp_path):
    from mim_pretrain.apis import extract_weights_main
    out = tmp_path / 'plain.pth'
    extract_weights_main([str(full_ckpt), str(out)])
    ckpt = _load_checkpoint(str(out), map_location='cpu')  # untrusted: fine
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    with pytest.raises(SystemExit, match='no tensor key starts with'):
        extract_weights_main([str(full_ckpt), str(out), '--prefix',
                              'backbone.'])


def test_each_patch_is_applied_and_logged_once(monkeypatch):
    """Every patched entry point is in place, and the first dataloader a
    Runner builds logs each one once (never again in this process)."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.runner import Runner
    for owner, attribute, replacement, _ in compat.PATCHES:
        assert owner.__dict__[attribute] is replacement, attribute
    monkeypatch.setitem(compat._logged, 'done', False)
    logger = MMLogger.get_instance('compat_log_test')  # the current one
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    loader = dict(dataset=[1, 2, 3], batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    try:
        for _ in range(2):
            Runner.build_dataloader(loader)
    finally:
        logger.removeHandler(handler)
    lines = [r.getMessage() for r in records
             if r.getMessage().startswith('mim_pretrain.compat')]
    assert len(lines) == len(compat.PATCHES) + 1, lines
    for owner, attribute, _, problem in compat.PATCHES:
        entry = compat._entry(owner, attribute)
        assert sum(entry in line and problem in line for line in lines) == 1
    assert 'CheckpointLoader' in lines[0]


def test_every_fix_says_when_it_can_go():
    sections = compat.__doc__.split('\n\n')
    titled = [i for i, s in enumerate(sections) if '\n---' in s]
    assert len(titled) == 5
    for start, end in zip(titled, titled[1:] + [len(sections)]):
        body = ' '.join(sections[start:end])
        assert 'Remove when' in body, sections[start].splitlines()[0]
